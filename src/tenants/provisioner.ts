/**
 * Provisioning a tenant's home: create its schema (SCHEMA isolation) or its database (DATABASE
 * isolation), then apply the whole catalog. Every step tolerates having run before, so a retry
 * after a failure or a crash simply carries on.
 */
import type pg from 'pg';
import { ensureDatabase, migrateUp, schemaLockKey } from '../migrations/index.js';
import type {
  MigrateOptions,
  MigrateResult,
  MigrationCatalog,
  MigrationTarget,
} from '../migrations/index.js';

/** The parts of a tenant_databases row that say where the tenant's ledger lives. */
export interface TenantDatabaseLocation {
  readonly isolation: 'SCHEMA' | 'DATABASE';
  readonly databaseName: string;
  readonly schemaName: string | null;
}

/** The schema a DATABASE-isolated tenant uses inside its own database when the row names none. */
export const DEFAULT_DATABASE_SCHEMA = 'public';

/** Where the engine migrates a tenant database: its schema, locked as `<database>/<schema>`. */
export function migrationTargetOf(location: TenantDatabaseLocation): MigrationTarget {
  const schema =
    location.schemaName ??
    (location.isolation === 'DATABASE' ? DEFAULT_DATABASE_SCHEMA : location.databaseName);
  return { schema, lockKey: schemaLockKey(location.databaseName, schema) };
}

export interface ProvisionTenantInput {
  readonly location: TenantDatabaseLocation;
  /** The tenant database's decrypted connection string (its own database for DATABASE isolation). */
  readonly connectionString: string;
  readonly pool: pg.Pool;
  readonly catalog: MigrationCatalog;
  readonly options?: Omit<MigrateOptions, 'toVersion'>;
}

/**
 * Creates the tenant's database when DATABASE-isolated, then its schema and ledger, and applies
 * every catalog file. The engine creates the schema under the tenant's advisory lock.
 */
export async function provisionTenant({
  location,
  connectionString,
  pool,
  catalog,
  options = {},
}: ProvisionTenantInput): Promise<MigrateResult> {
  if (location.isolation === 'DATABASE') await ensureDatabase(connectionString);
  return migrateUp(pool, migrationTargetOf(location), catalog, { ...options, toVersion: catalog.latest });
}
