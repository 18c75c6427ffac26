/**
 * The database servers tenants live on: registering them (connection checked first, connection
 * string sealed, never returned), changing their budget or stopping placement on them, the
 * `default` server of TENANT_DATABASE_URL registered at start, and placing a new tenant.
 */
import { randomUUID } from 'node:crypto';
import type { SecretBox } from '../crypto/secret-box.js';
import type { ControlPlaneDb, ControlPlanePool } from '../db/control-plane.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { DatabaseServer } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import { checkDatabaseServer } from './server-check.js';

/** The name of the server of TENANT_DATABASE_URL, registered at every start. */
export const DEFAULT_SERVER_NAME = 'default';
/** A server's name: what operators type in `servers add` and see in the console. */
export const SERVER_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/;
// A budget above the connections one process holds per server would never be reached.
const MAX_BUDGET = 1000;

export interface RegisterDatabaseServerInput {
  readonly name: string;
  /** Secret: checked, sealed, never returned or logged. */
  readonly connectionString: string;
  readonly maxConcurrentMigrations?: number | null;
  readonly acceptingTenants?: boolean | null;
}

export interface UpdateDatabaseServerInput {
  readonly id: string;
  readonly maxConcurrentMigrations?: number | null;
  readonly acceptingTenants?: boolean | null;
}

/** Where a new tenant goes: a server and its (secret) admin connection string. */
export interface Placement {
  readonly serverId: string;
  readonly serverName: string;
  readonly connectionString: string;
  /** The server row's sealed connection string as read: a registration checks it is unchanged. */
  readonly sealed: string;
  /** It was the only server accepting tenants when read (an automatic placement could pick no other). */
  readonly onlyAccepting: boolean;
}

/** A server with its number of tenants (not deleted). */
export type DatabaseServerWithCount = DatabaseServer & { readonly tenantCount: number };

export interface ServerServiceDeps {
  readonly db: ControlPlaneDb;
  readonly pool: ControlPlanePool;
  readonly secretBox: SecretBox;
  readonly logger: Logger;
  /** Wakes targets waiting for a server's budget (after it grew); bound in the composition root. */
  readonly wakeDeferred?: () => Promise<unknown>;
}

/** Creates the server registry over the control-plane DB. */
export function createServerService({ db, pool, secretBox, logger, wakeDeferred }: ServerServiceDeps) {
  /**
   * Registers TENANT_DATABASE_URL's server as `default` when it is missing, and moves tenant
   * databases without a server (registered before migration 0008) onto it. Idempotent; an
   * existing `default` is kept even when the URL changed (its tenants stay where they are).
   */
  async function ensureDefaultServer(
    tenantDatabaseUrl: string,
    maxConcurrentMigrations = 32,
  ): Promise<string> {
    const { host, port } = parseServerUrl(tenantDatabaseUrl);
    const id = randomUUID();
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const { rows } = await pool.query<{ id: string | null; moved: number; host: string; port: number }>(
        ENSURE_DEFAULT,
        [
          id,
          secretBox.sealConnectionString(id, tenantDatabaseUrl),
          host,
          port,
          DEFAULT_SERVER_NAME,
          maxConcurrentMigrations,
        ],
      );
      const row = rows[0];
      // A concurrent start inserted it after this statement's snapshot: read it again.
      if (!row?.id) continue;
      if (row.moved > 0) logger.info('tenant databases moved onto the default server', { moved: row.moved });
      if (row.host !== host || row.port !== port) {
        logger.warn('TENANT_DATABASE_URL names another server than the registered default; default is kept', {
          registered: `${row.host}:${row.port}`,
          configured: `${host}:${port}`,
        });
      }
      return row.id;
    }
    throw new Error('could not register the default database server');
  }

  /** Connects, checks privileges, then saves the server. ValidationError (nothing saved), ConflictError. */
  async function registerDatabaseServer(input: RegisterDatabaseServerInput): Promise<DatabaseServer> {
    const name = validateName(input.name);
    const budget = validateBudget(input.maxConcurrentMigrations ?? 4);
    let location: { host: string; port: number };
    try {
      location = parseServerUrl(input.connectionString);
    } catch {
      throw new ValidationError(
        'connectionString must be a postgres:// or postgresql:// URL',
        'connectionString',
      );
    }
    if (await db.databaseServer.findUnique({ where: { name }, select: { id: true } })) {
      throw new ConflictError(`A database server named "${name}" already exists`);
    }
    const reason = await checkDatabaseServer(input.connectionString);
    if (reason) throw new ValidationError(reason, 'connectionString');
    const id = randomUUID();
    try {
      const server = await db.databaseServer.create({
        data: {
          id,
          name,
          connectionStringEncrypted: secretBox.sealConnectionString(id, input.connectionString),
          host: location.host,
          port: location.port,
          acceptingTenants: input.acceptingTenants ?? true,
          maxConcurrentMigrations: budget,
        },
      });
      logger.info('database server registered', {
        serverId: id,
        name,
        host: location.host,
        port: location.port,
      });
      return server;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'P2002') {
        throw new ConflictError(`A database server named "${name}" already exists`, { cause: error });
      }
      throw error;
    }
  }

  /** Changes a server's budget or whether new tenants are placed on it. NotFoundError, ValidationError. */
  async function updateDatabaseServer(input: UpdateDatabaseServerInput): Promise<DatabaseServer> {
    const data: { maxConcurrentMigrations?: number; acceptingTenants?: boolean } = {};
    if (input.maxConcurrentMigrations != null) {
      data.maxConcurrentMigrations = validateBudget(input.maxConcurrentMigrations);
    }
    if (input.acceptingTenants != null) data.acceptingTenants = input.acceptingTenants;
    const existing = await db.databaseServer.findUnique({ where: { id: input.id } });
    if (!existing) throw new NotFoundError('Database server not found');
    if (Object.keys(data).length === 0) return existing;
    const server = await db.databaseServer.update({ where: { id: input.id }, data });
    if ((data.maxConcurrentMigrations ?? 0) > existing.maxConcurrentMigrations && wakeDeferred) {
      // Targets waiting for this server may start now; the reconciler would find them later anyway.
      await wakeDeferred().catch((error: unknown) =>
        logger.warn('could not wake deferred targets', { error }),
      );
    }
    return server;
  }

  /** Every server with its tenant count, by name. */
  async function listDatabaseServers(): Promise<DatabaseServerWithCount[]> {
    const servers = await db.databaseServer.findMany({ orderBy: { name: 'asc' } });
    const counts = await tenantCounts();
    return servers.map((server) => ({ ...server, tenantCount: counts.get(server.id) ?? 0 }));
  }

  /** Tenants (not deleted) per server id. */
  async function tenantCounts(): Promise<Map<string, number>> {
    const { rows } = await pool.query<{ id: string; n: number }>(TENANT_COUNTS);
    return new Map(rows.map((row) => [row.id, row.n]));
  }

  /**
   * Where a new tenant goes: `serverId` when given (ValidationError when unknown or not accepting
   * tenants), else the accepting server with the fewest tenants, then by name.
   */
  async function placeTenant(serverId: string | null | undefined): Promise<Placement> {
    const { rows } = await pool.query<{
      id: string;
      name: string;
      sealed: string;
      accepting: boolean;
      acceptingServers: number;
    }>(serverId ? PICK_SERVER : PLACE_TENANT, serverId ? [serverId] : []);
    const row = rows[0];
    if (!row) {
      throw serverId
        ? new ValidationError('No such database server', 'server')
        : new ValidationError('No database server accepts new tenants', 'server');
    }
    if (!row.accepting) {
      throw new ValidationError(`Database server "${row.name}" does not accept new tenants`, 'server');
    }
    return {
      serverId: row.id,
      serverName: row.name,
      connectionString: secretBox.openConnectionString({ id: row.id, connectionStringEncrypted: row.sealed }),
      sealed: row.sealed,
      onlyAccepting: row.acceptingServers === 1,
    };
  }

  /** The `default` server row (for tenant databases registered before servers existed). */
  async function defaultServer(): Promise<DatabaseServer> {
    const server = await db.databaseServer.findUnique({ where: { name: DEFAULT_SERVER_NAME } });
    if (!server) throw new Error('the default database server is not registered');
    return server;
  }

  return {
    ensureDefaultServer,
    registerDatabaseServer,
    updateDatabaseServer,
    listDatabaseServers,
    tenantCounts,
    placeTenant,
    defaultServer,
  };
}
export type ServerService = ReturnType<typeof createServerService>;

/** Host and port of a postgres URL (port 5432 when absent). Throws on anything else. */
export function parseServerUrl(connectionString: string): { host: string; port: number } {
  const url = new URL(connectionString);
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new TypeError('not a postgres URL');
  if (!url.hostname) throw new TypeError('no host');
  return { host: url.hostname, port: url.port ? Number(url.port) : 5432 };
}

function validateName(name: string): string {
  if (!SERVER_NAME_PATTERN.test(name)) {
    throw new ValidationError(
      'name must be 1-63 lowercase letters, digits, _ or -, starting with a letter',
      'name',
    );
  }
  return name;
}

function validateBudget(budget: number): number {
  if (!Number.isInteger(budget) || budget < 1 || budget > MAX_BUDGET) {
    throw new ValidationError(
      `maxConcurrentMigrations must be an integer from 1 to ${MAX_BUDGET}`,
      'maxConcurrentMigrations',
    );
  }
  return budget;
}

// $1 id, $2 sealed URL, $3 host, $4 port, $5 name, $6 budget. The CTE's SELECT does not see the row `ins`
// inserts (one snapshot), so exactly one of the two branches answers.
const ENSURE_DEFAULT = `
  WITH ins AS (
    INSERT INTO control_plane.database_servers
      (id, name, connection_string_encrypted, host, port, max_concurrent_migrations)
    VALUES ($1::uuid, $5::varchar, $2::text, $3::varchar, $4::int, $6::int)
    ON CONFLICT (name) DO NOTHING
    RETURNING id, host, port
  ), s AS (
    SELECT id, host, port FROM ins
    UNION ALL SELECT id, host, port FROM control_plane.database_servers WHERE name = $5::varchar
  ), moved AS (
    UPDATE control_plane.tenant_databases SET server_id = (SELECT id FROM s LIMIT 1)
    WHERE server_id IS NULL AND EXISTS (SELECT 1 FROM s)
    RETURNING 1
  )
  SELECT s.id::text AS id, s.host, s.port, (SELECT count(*)::int FROM moved) AS moved
  FROM (SELECT 1) one LEFT JOIN s ON true LIMIT 1`;

const TENANT_COUNTS = `
  SELECT d.server_id::text AS id, count(*)::int AS n
  FROM control_plane.tenant_databases d
  JOIN control_plane.tenants t ON t.tenant_id = d.tenant_id AND t.deleted_at IS NULL
  WHERE d.server_id IS NOT NULL
  GROUP BY d.server_id`;

// The accepting server with the fewest tenants (not deleted), then by name.
const ACCEPTING_SERVERS = `(SELECT count(*)::int FROM control_plane.database_servers
    WHERE accepting_tenants) AS "acceptingServers"`;

const PLACE_TENANT = `
  SELECT s.id::text AS id, s.name, s.connection_string_encrypted AS sealed, s.accepting_tenants AS accepting,
    ${ACCEPTING_SERVERS}
  FROM control_plane.database_servers s
  WHERE s.accepting_tenants
  ORDER BY (SELECT count(*) FROM control_plane.tenant_databases d
              JOIN control_plane.tenants t ON t.tenant_id = d.tenant_id AND t.deleted_at IS NULL
             WHERE d.server_id = s.id), s.name
  LIMIT 1`;

const PICK_SERVER = `
  SELECT s.id::text AS id, s.name, s.connection_string_encrypted AS sealed, s.accepting_tenants AS accepting,
    ${ACCEPTING_SERVERS}
  FROM control_plane.database_servers s WHERE s.id = $1::uuid`;
