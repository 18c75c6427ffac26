/**
 * Provisioning a tenant's home: create its schema (SCHEMA isolation) or its database (DATABASE
 * isolation), then apply the whole catalog. Every step tolerates having run before, so a retry
 * after a failure or a crash simply carries on.
 */
import type pg from 'pg';
import { ensureDatabase, migrateUp } from '../migrations/index.js';
import { ledgerTargetOf, type TenantDatabaseLocation as LedgerLocation } from './ledger-target.js';
import type { MigrateOptions, MigrateResult, MigrationCatalog } from '../migrations/index.js';

/** A tenant database row as the provisioner needs it. */
export interface TenantDatabaseLocation extends LedgerLocation {
  readonly isolation: 'SCHEMA' | 'DATABASE';
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
 * every catalog file. A new tenant's ledger is empty, so the engine first tries all of it in one
 * round trip; anything else (a retry after a crash) takes its careful path, which creates the
 * schema under the tenant's advisory lock and reports failures by file.
 */
export async function provisionTenant({
  location,
  connectionString,
  pool,
  catalog,
  options = {},
}: ProvisionTenantInput): Promise<MigrateResult> {
  if (location.isolation === 'DATABASE') await ensureDatabase(connectionString);
  return migrateUp(pool, ledgerTargetOf(location), catalog, {
    ...options,
    toVersion: catalog.latest,
    expectedVersion: null,
    // The tenants database is shared: create its extensions schema and revoke CREATE on public.
    prepareDatabase: true,
  });
}
