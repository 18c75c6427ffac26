/**
 * Small `pg` helpers shared by the migration engine and the CLI: identifier checks and
 * short-lived connections. Everything here is driver-level; nothing knows about tenants.
 */
import pg from 'pg';
import { ValidationError } from '../errors.js';

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

/** Runs `fn` on a short-lived single connection to `url`, closed in `finally`. */
export async function withConnection<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
