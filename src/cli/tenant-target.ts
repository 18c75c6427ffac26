/**
 * How the CLI addresses a tenant. For now a tenant is its schema on TENANT_DATABASE_URL;
 * this is the one place to change when tenants are looked up in the control plane instead.
 */
import { databaseOf, type Config } from '../config.js';
import { quoteSchema } from '../db/pg.js';
import { schemaLockKey } from '../migrations/index.js';
import type { MigrationTarget } from '../migrations/index.js';

/** Where a tenant's migrations run: the database URL and the schema target inside it. */
export interface TenantTarget {
  readonly databaseUrl: string;
  readonly target: MigrationTarget;
}

/** Resolves `--tenant acme` to schema `tenant_acme` on TENANT_DATABASE_URL (`tenant_acme` is used as is). */
export async function resolveTenantTarget(config: Config, name: string): Promise<TenantTarget> {
  const schema = name.startsWith('tenant_') ? name : `tenant_${name}`;
  quoteSchema(schema);
  const databaseUrl = config.tenantDatabaseUrl;
  return { databaseUrl, target: { schema, lockKey: schemaLockKey(databaseOf(databaseUrl), schema) } };
}
