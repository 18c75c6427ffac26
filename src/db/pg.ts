/**
 * Small `pg` helpers shared by the migration engine and the CLI: identifier checks and
 * short-lived connections. Everything here is driver-level; nothing knows about tenants.
 */
import pg from 'pg';
import { ValidationError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';

/** Where a pool reports a connection it lost; the pool itself replaces the connection. */
export type ConnectionLossLogger = Pick<Logger, 'warn'>;

// Lowercase only, so the quoted name equals what an unquoted name in a migration file would fold to.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
// Database names may also carry dashes and digits first (e.g. generated test databases).
const DATABASE_NAME = /^[a-z0-9_][a-z0-9_-]{0,62}$/;

/** Raised when a schema or database name does not match the strict identifier pattern. */
export class InvalidIdentifierError extends ValidationError {
  constructor(
    readonly kind: 'schema' | 'database',
    readonly value: string,
  ) {
    super(`Invalid ${kind} name "${value}": use 1-63 lowercase letters, digits and underscores`, kind);
  }
}

/** Validates a schema name and returns it quoted for SQL. */
export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new InvalidIdentifierError('schema', schema);
  return pg.escapeIdentifier(schema);
}

/** Validates a database name and returns it quoted for SQL. */
export function quoteDatabase(database: string): string {
  if (!DATABASE_NAME.test(database)) throw new InvalidIdentifierError('database', database);
  return pg.escapeIdentifier(database);
}

/** What `createPgPool` takes: pg's pool settings, a name for logs and pg_stat_activity, a logger. */
export interface PgPoolOptions extends Omit<pg.PoolConfig, 'Client' | 'application_name'> {
  /** Shown in pg_stat_activity and in the log line of a lost connection. */
  readonly applicationName: string;
  /** Defaults to a warn-level logger on stderr. */
  readonly logger?: ConnectionLossLogger;
}

/**
 * A `pg` pool that survives losing its connections (a server restart, a failover, a proxy's idle
 * timeout, pg_terminate_backend): every client it opens listens to its own 'error' events, idle or
 * checked out, so none escapes as an uncaught exception. A lost idle client is dropped from the
 * pool and replaced on the next checkout; a checked-out one fails its query, and pg-pool discards
 * it on release because it is no longer queryable.
 */
export function createPgPool({ applicationName, logger, ...config }: PgPoolOptions): pg.Pool {
  const pool = new pg.Pool({
    ...config,
    application_name: applicationName,
    Client: resilientClientClass(applicationName, logger ?? createLogger('warn')),
  });
  // Reported already by the client's own listener; the pool only removes the client.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * A `pg.Client` subclass that logs its 'error' events. Pools take a class, not a factory; the
 * subclass also lets tenant-pools.ts hook `connect` to count connections per server.
 */
export function resilientClientClass(
  name: string,
  logger: ConnectionLossLogger,
): new (config?: string | pg.ClientConfig) => pg.Client {
  return class ResilientClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      this.on('error', (error: Error & { code?: string }) => {
        logger.warn('PostgreSQL connection lost; the pool replaces it', {
          pool: name,
          code: error.code,
          error: error.message,
        });
      });
    }
  };
}

/** Runs `fn` on a short-lived single connection to `url`, closed in `finally`. */
export async function withConnection<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  // A connection lost between two queries makes the next query fail; that is where it is reported.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
