import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createSecretBoxFromConfig } from '../../src/crypto/secret-box.js';
import { databaseOf, type Config } from '../../src/config.js';
import { migrateUp, schemaLockKey, type MigrationCatalog } from '../../src/migrations/index.js';
import { ownershipMarker } from '../../src/tenants/ownership.js';

/**
 * Registers `count` ACTIVE schema-isolated tenants (`<prefix>_00001`...) in the control plane and
 * creates their empty schemas on the tenant server, in bulk: setup, not part of any measurement.
 * `schemaVersion` is the version the control plane caches for them (null: none applied).
 */
export async function seedSchemaTenants(
  config: Config,
  prefix: string,
  count: number,
  withSchemas = true,
  schemaVersion: string | null = null,
) {
  const box = createSecretBoxFromConfig(config);
  const tenantUrl = new URL(config.tenantDatabaseUrl);
  const names = Array.from({ length: count }, (_, i) => `${prefix}_${String(i + 1).padStart(5, '0')}`);
  const schemas = names.map((name) => `tenant_${name}`);
  const cp = new pg.Client({ connectionString: config.databaseUrl });
  await cp.connect();
  let marker: string;
  try {
    // The schemas are this deployment's, as provisioning would have made them: they carry its marker.
    await cp.query('INSERT INTO control_plane.deployment DEFAULT VALUES ON CONFLICT DO NOTHING');
    const deployment = await cp.query<{ id: string }>(
      'SELECT deployment_id::text AS id FROM control_plane.deployment',
    );
    marker = ownershipMarker(deployment.rows[0]!.id);
    for (let offset = 0; offset < count; offset += 2000) {
      const slice = names.slice(offset, offset + 2000);
      // Each row's connection string is sealed bound to that row's id, so ids are chosen here.
      const ids = slice.map(() => randomUUID());
      await cp.query(
        `WITH t AS (
           INSERT INTO control_plane.tenants (name, environment, status)
           SELECT unnest($1::text[]), 'production', 'active' RETURNING tenant_id, name)
         INSERT INTO control_plane.tenant_databases
           (id, tenant_id, connection_string_encrypted, database_name, host, port, status, isolation, schema_name,
            server_id, schema_version)
         SELECT d.id, t.tenant_id, d.sealed, $3, $4, $5, 'active', 'schema', 'tenant_' || t.name,
           (SELECT id FROM control_plane.database_servers WHERE name = 'default'), $7
         FROM t JOIN unnest($1::text[], $6::uuid[], $2::text[]) AS d(name, id, sealed) ON d.name = t.name`,
        [
          slice,
          ids.map((id) => box.sealConnectionString(id, config.tenantDatabaseUrl)),
          decodeURIComponent(tenantUrl.pathname.slice(1)),
          tenantUrl.hostname,
          Number(tenantUrl.port || 5432),
          ids,
          schemaVersion,
        ],
      );
    }
  } finally {
    await cp.end();
  }
  if (withSchemas) {
    const tenants = new pg.Client({ connectionString: config.tenantDatabaseUrl });
    await tenants.connect();
    try {
      await createSchemas(tenants, schemas, marker);
    } finally {
      await tenants.end();
    }
  }
  return { names, schemas };
}

/** Creates empty schemas, 500 per round trip, with `marker` as their comment when given. */
export async function createSchemas(
  client: Pick<pg.ClientBase, 'query'>,
  schemas: readonly string[],
  marker?: string,
): Promise<void> {
  const comment = (schema: string) =>
    marker ? `COMMENT ON SCHEMA ${pg.escapeIdentifier(schema)} IS ${pg.escapeLiteral(marker)};` : '';
  for (let offset = 0; offset < schemas.length; offset += 500) {
    await client.query(
      schemas
        .slice(offset, offset + 500)
        .map((schema) => `CREATE SCHEMA ${pg.escapeIdentifier(schema)};${comment(schema)}`)
        .join(''),
    );
  }
}

/**
 * Registers `count` tenants as `seedSchemaTenants` does, at the catalog's latest version, and
 * migrates each schema there with the engine (`migrateUp` as provisioning calls it: one round
 * trip a tenant, the files and the ledger rows in one transaction) on `connections` connections.
 */
export async function seedMigratedSchemaTenants(
  config: Config,
  prefix: string,
  count: number,
  catalog: MigrationCatalog,
  connections = 4,
) {
  const seeded = await seedSchemaTenants(config, prefix, count, true, catalog.latest);
  const pool = new pg.Pool({ connectionString: config.tenantDatabaseUrl, max: connections });
  const database = databaseOf(config.tenantDatabaseUrl);
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        for (let i = next++; i < seeded.schemas.length; i = next++) {
          const schema = seeded.schemas[i] as string;
          const target = {
            schema,
            lockKey: schemaLockKey(database, schema),
            ledgerTable: config.ledgerTable,
          };
          const result = await migrateUp(pool, target, catalog, {
            expectedVersion: null,
            prepareDatabase: true,
          });
          if (result.toVersion !== catalog.latest)
            throw new Error(`${schema} reached ${result.toVersion}, not ${catalog.latest}`);
        }
      }),
    );
  } finally {
    await pool.end();
  }
  return seeded;
}
