/**
 * Registering a new tenant in the control plane: its row (PENDING), its database row (INACTIVE,
 * connection string sealed), its PROVISION run and that run's one target, in one statement.
 *
 * Why one statement on a plain pg pool and not a Prisma transaction: createTenant is on the path
 * of every provisioning, and on small VMs its cost was round trips (BEGIN, four inserts, a lookup,
 * COMMIT, then a second transaction of eight statements to admit the target). One statement is
 * atomic on its own: a duplicate name or location fails it whole and leaves nothing behind. It is
 * sent as a named prepared statement, so the server plans it once per connection.
 *
 * The run and its target are the run machine's own statement parts (runs/sql/run-statements.ts
 * provisionRunCtes): a PROVISION run has one target and a window of one, so that target is
 * admitted at once (QUEUED, counted as pending). The caller enqueues its job after this returns;
 * if the process dies in between, the reconciler finds a QUEUED target without a job and
 * enqueues it, as it does for any admitted target.
 */
import type { ControlPlanePool } from '../db/control-plane.js';
import { runColumns, tenantColumns, unprefixRow } from '../db/control-plane-rows.js';
import type { MigrationRun, Tenant } from '../generated/prisma/client.js';
import type { IsolationMode, TenantEnvironment } from '../generated/prisma/enums.js';
import { provisionRunCtes } from '../runs/sql/run-statements.js';

/** What a new tenant is registered with. */
export interface TenantRegistration {
  readonly name: string;
  readonly environment: TenantEnvironment;
  readonly isolation: IsolationMode;
  readonly host: string;
  readonly port: number;
  readonly databaseName: string;
  readonly schemaName: string | null;
  /**
   * The tenant database row's id, chosen by the caller: the connection string is sealed bound to
   * it (additional authenticated data), so it must be known before the row is inserted.
   */
  readonly tenantDatabaseId: string;
  /** The tenant database's connection string, already sealed for `tenantDatabaseId`. */
  readonly connectionStringEncrypted: string;
  /** The database server it is placed on (servers/server-service.ts placeTenant). */
  readonly serverId: string;
  /** The catalog version provisioning brings the tenant to (null: an empty catalog). */
  readonly targetVersion: string | null;
  /**
   * The catalog release holding `targetVersion` that the PROVISION run pins (the registering
   * process's own): the worker applies that release's SQL, not its own disk's.
   */
  readonly catalogReleaseId: string | null;
  readonly requestedBy: string;
  /**
   * The server as its placement read it: the registration inserts nothing (and answers null)
   * unless the server still accepts tenants with that sealed connection string and, for
   * `onlyAccepting`, no other server accepts any. So a placement remembered from an earlier
   * tenant is as good as a fresh one, or is refused. None: no check.
   */
  readonly placedOn?: { readonly sealed: string; readonly onlyAccepting: boolean };
}

/** The rows a registration inserted, in the Prisma client's shapes. */
export interface RegisteredTenant {
  readonly tenant: Tenant;
  readonly provisioning: MigrationRun;
  /** The provisioning run's one target, admitted (QUEUED): enqueue its job. */
  readonly targetId: string;
}

/** Unique constraints a registration can hit, by the name PostgreSQL reports. */
export const REGISTRATION_CONSTRAINTS = {
  name: 'tenants_name_key',
  location: 'uq_tenant_databases_location',
} as const;

/**
 * Inserts the tenant, its database, its PROVISION run and the run's admitted target in one
 * statement. A duplicate name or location throws pg's unique violation (23505, `constraint` one of
 * REGISTRATION_CONSTRAINTS) and inserts nothing. Null, with nothing inserted, when the server is
 * no longer as `placedOn` says.
 */
export async function registerTenant(
  pool: ControlPlanePool,
  registration: TenantRegistration & { readonly placedOn?: undefined },
): Promise<RegisteredTenant>;
export async function registerTenant(
  pool: ControlPlanePool,
  registration: TenantRegistration,
): Promise<RegisteredTenant | null>;
export async function registerTenant(
  pool: ControlPlanePool,
  registration: TenantRegistration,
): Promise<RegisteredTenant | null> {
  const result = await pool.query<Record<string, unknown>>({
    name: 'register_tenant',
    text: REGISTER_TENANT,
    values: [
      registration.name,
      registration.environment.toLowerCase(),
      registration.isolation.toLowerCase(),
      registration.host,
      registration.port,
      registration.databaseName,
      registration.schemaName,
      registration.connectionStringEncrypted,
      registration.targetVersion,
      registration.requestedBy,
      registration.tenantDatabaseId,
      registration.serverId,
      registration.catalogReleaseId,
      registration.placedOn?.sealed ?? null,
      registration.placedOn?.onlyAccepting ?? false,
    ],
  });
  const row = result.rows[0];
  if (!row) {
    if (registration.placedOn) return null;
    throw new Error(`registering tenant "${registration.name}" returned no row`);
  }
  return {
    tenant: unprefixRow<Tenant>(row, 't_'),
    provisioning: unprefixRow<MigrationRun>(row, 'r_'),
    targetId: row.targetId as string,
  };
}

// $1 name, $2 environment, $3 isolation, $4 host, $5 port, $6 database name, $7 schema name,
// $8 sealed connection string, $9 target version, $10 requested by, $11 tenant database id,
// $12 database server, $13 catalog release, $14 the server's sealed connection string as placed
// (NULL: not checked), $15 whether it was the only server accepting tenants. Every data-modifying
// CTE runs exactly once, whether or not the final SELECT reads it; when the server is not as
// placed, `placed` is empty and nothing is inserted.
const REGISTER_TENANT = `
  WITH placed AS (
    SELECT 1 WHERE $14::text IS NULL OR EXISTS (
      SELECT 1 FROM control_plane.database_servers s
      WHERE s.id = $12::uuid AND s.accepting_tenants AND s.connection_string_encrypted = $14::text
        AND NOT ($15::boolean AND EXISTS (SELECT 1 FROM control_plane.database_servers o
          WHERE o.accepting_tenants AND o.id <> s.id)))
  ), tenant AS (
    INSERT INTO control_plane.tenants (name, environment, status)
    SELECT $1::varchar, $2::text::control_plane.tenant_environment, 'pending' FROM placed
    RETURNING *
  ), db AS (
    INSERT INTO control_plane.tenant_databases
      (id, tenant_id, isolation, host, port, database_name, schema_name, status, connection_string_encrypted,
       server_id)
    SELECT $11::uuid, tenant.tenant_id, $3::text::control_plane.isolation_mode, $4::varchar, $5::int, $6::varchar,
      $7::varchar, 'inactive', $8::text, $12::uuid
    FROM tenant
    RETURNING id, tenant_id, schema_version
  ), ${provisionRunCtes('$9', '$10', '$13')}
  SELECT ${tenantColumns('tenant', 't_')}, ${runColumns('run', 'r_')}, target.id::text AS "targetId"
  FROM tenant, run, target`;
