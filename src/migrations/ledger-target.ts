/**
 * Where a tenant database's ledger lives, as the migration engine addresses it. The provisioner,
 * the worker, the API's ledger reads and the CLI all use this one function, so they take the
 * same advisory lock for the same tenant.
 */
import { schemaLockKey } from './advisory-lock.js';
import type { MigrationTarget } from './types.js';

/** The parts of a tenant_databases row that say where the tenant's ledger lives. */
export interface TenantDatabaseLocation {
  readonly databaseName: string;
  readonly schemaName: string | null;
}

/** Tenant objects of DATABASE-isolated tenants (and their ledger) live in this schema of their own database. */
export const DATABASE_ISOLATION_SCHEMA = 'public';

/**
 * The engine target of a tenant database: its schema, locked as `<database>/<schema>`, with its
 * ledger table named `ledgerTable` (the deployment's LEDGER_TABLE).
 */
export function ledgerTargetOf(location: TenantDatabaseLocation, ledgerTable: string): MigrationTarget {
  const schema = location.schemaName ?? DATABASE_ISOLATION_SCHEMA;
  return { schema, lockKey: schemaLockKey(location.databaseName, schema), ledgerTable };
}
