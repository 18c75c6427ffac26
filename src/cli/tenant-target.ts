/**
 * How the CLI addresses a tenant. A tenant registered in the control plane is found by name and
 * migrated where its database row says (its own database for DATABASE isolation), and the
 * control plane's cached version follows what the CLI did. Without a control plane (the engine
 * used on its own), `--tenant acme` means schema `tenant_acme` on TENANT_DATABASE_URL.
 */
import { databaseOf, type Config } from '../config.js';
import { createSecretBoxFromConfig } from '../crypto/secret-box.js';
import { quoteSchema, withConnection } from '../db/pg.js';
import { AppError, NotFoundError } from '../errors.js';
import { schemaLockKey } from '../migrations/index.js';
import type { MigrationTarget } from '../migrations/index.js';
import { ledgerTargetOf } from '../tenants/ledger-target.js';

/** Where a tenant's migrations run: the database URL and the schema target inside it. */
export interface TenantTarget {
  readonly databaseUrl: string;
  readonly target: MigrationTarget;
  /** The control-plane row whose cached version to update, or null for an unregistered schema. */
  readonly tenantDatabaseId: string | null;
}

interface TenantDatabaseRow {
  id: string;
  connection_string_encrypted: string;
  database_name: string;
  schema_name: string | null;
}

/** Resolves `--tenant <name>`: the registered tenant of that name, else (no control plane) its schema. */
export async function resolveTenantTarget(config: Config, name: string): Promise<TenantTarget> {
  const registered = await findRegisteredTenant(config, name);
  if (registered === 'no-control-plane') {
    const schema = name.startsWith('tenant_') ? name : `tenant_${name}`;
    quoteSchema(schema);
    const databaseUrl = config.tenantDatabaseUrl;
    return {
      databaseUrl,
      target: {
        schema,
        lockKey: schemaLockKey(databaseOf(databaseUrl), schema),
        ledgerTable: config.ledgerTable,
      },
      tenantDatabaseId: null,
    };
  }
  if (!registered) {
    throw new NotFoundError(`No tenant named "${name}" in the control plane (see the tenants query)`);
  }
  const secretBox = createSecretBoxFromConfig(config);
  return {
    databaseUrl: secretBox.openConnectionString({
      id: registered.id,
      connectionStringEncrypted: registered.connection_string_encrypted,
    }),
    target: ledgerTargetOf(
      { databaseName: registered.database_name, schemaName: registered.schema_name },
      config.ledgerTable,
    ),
    tenantDatabaseId: registered.id,
  };
}

/** Records the version the CLI left a registered tenant at, so fleet queries see it at once. */
export async function recordCachedVersion(
  config: Config,
  tenant: TenantTarget,
  version: string | null,
): Promise<void> {
  if (!tenant.tenantDatabaseId) return;
  await withConnection(config.databaseUrl, (client) =>
    client.query('UPDATE control_plane.tenant_databases SET schema_version = $2 WHERE id = $1', [
      tenant.tenantDatabaseId,
      version,
    ]),
  );
}

/** Fails with one clear line when the control plane has not been migrated into DATABASE_URL. */
export async function assertControlPlaneReady(config: Config): Promise<void> {
  if ((await findRegisteredTenant(config, '')) === 'no-control-plane') {
    throw new AppError(
      'CONTROL_PLANE_MISSING',
      `The control plane is not migrated in database "${databaseOf(config.databaseUrl)}": run \`npm run migrate -- control-plane up\` or start the service first`,
    );
  }
}

async function findRegisteredTenant(
  config: Config,
  name: string,
): Promise<TenantDatabaseRow | null | 'no-control-plane'> {
  return lookUp(config, name).catch((error: unknown) => {
    // 3D000: the control-plane database itself does not exist yet.
    if ((error as { code?: string }).code === '3D000') return 'no-control-plane' as const;
    throw error;
  });
}

async function lookUp(config: Config, name: string): Promise<TenantDatabaseRow | null | 'no-control-plane'> {
  return withConnection(config.databaseUrl, async (client) => {
    const { rows: ready } = await client.query<{ ok: boolean }>(
      `SELECT to_regclass('control_plane.tenant_databases') IS NOT NULL AS ok`,
    );
    if (!ready[0]?.ok) return 'no-control-plane';
    const { rows } = await client.query<TenantDatabaseRow>(
      `SELECT d.id, d.connection_string_encrypted, d.database_name, d.schema_name
         FROM control_plane.tenants t JOIN control_plane.tenant_databases d ON d.tenant_id = t.tenant_id
        WHERE t.name = $1 AND t.deleted_at IS NULL
        ORDER BY d.created_at LIMIT 1`,
      [name],
    );
    return rows[0] ?? null;
  });
}
