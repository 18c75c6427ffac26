import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationFailedError, loadCatalog } from '../../../src/migrations/index.js';
import type { AppliedStep } from '../../../src/migrations/index.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { withDatabase } from '../../../src/config.js';
import { quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { ConflictError } from '../../../src/errors.js';
import { ownershipMarker } from '../../../src/tenants/ownership.js';
import { provisionTenant, type TenantDatabaseLocation } from '../../../src/tenants/provisioner.js';
import { testServerUrl } from '../../helpers/template.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir, ledgerVersions, tablesIn } from '../migrations/fixtures.js';

// Two control-plane deployments; `provisionTenant` writes and checks the one it is given.
const deploymentId = randomUUID();
const otherDeploymentId = randomUUID();

describe('provisionTenant', () => {
  const db = useTestDatabase();
  const createdDatabases: string[] = [];

  afterAll(async () => {
    await withConnection(testServerUrl(), async (client) => {
      for (const name of createdDatabases) {
        await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(name)} WITH (FORCE)`);
      }
    });
  });

  async function schemaComment(schema: string): Promise<string | null | undefined> {
    const result = await db.pool.query<{ marker: string | null }>(
      `SELECT obj_description(oid, 'pg_namespace') AS marker FROM pg_namespace WHERE nspname = $1`,
      [schema],
    );
    return result.rows[0]?.marker;
  }

  function location(schema: string): TenantDatabaseLocation {
    return { isolation: 'SCHEMA', databaseName: db.name, schemaName: schema };
  }

  // Counts the queries sent on the pool's connections while `fn` runs.
  async function countingQueries<T>(
    pool: pg.Pool,
    fn: () => Promise<T>,
  ): Promise<{ value: T; queries: number }> {
    let queries = 0;
    const wrapped = new WeakSet<pg.PoolClient>();
    const onAcquire = (client: pg.PoolClient) => {
      if (wrapped.has(client)) return;
      wrapped.add(client);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        queries += 1;
        return query(...args);
      };
    };
    pool.on('acquire', onAcquire);
    try {
      return { value: await fn(), queries };
    } finally {
      pool.off('acquire', onAcquire);
    }
  }

  it('provisions a new schema in one round trip, timing each file in the ledger', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'provision-'));
    await writeFile(
      path.join(dir, '0001_quick.up.sql'),
      'CREATE TABLE quick (id int)\n-- comment last, no semicolon',
    );
    await writeFile(
      path.join(dir, '0002_slow.up.sql'),
      "SELECT pg_sleep(0.2);\nCREATE TABLE slow (note text DEFAULT ';');",
    );
    const catalog = await loadCatalog(dir);
    const seen: AppliedStep[] = [];
    const { value: result, queries } = await countingQueries(db.pool, () =>
      provisionTenant({
        location: location('tenant_fresh'),
        connectionString: db.url,
        pool: db.pool,
        catalog,
        deploymentId,
        options: { onApplied: (step) => void seen.push(step) },
      }),
    );
    // The tenant lock, the ownership guard (which creates and marks the schema), the whole catalog
    // and the ledger, and COMMIT: one round trip, one commit.
    expect(queries).toBe(1);
    expect(result).toMatchObject({ fromVersion: null, toVersion: '0002' });
    expect(seen).toEqual(result.steps);
    const ms = Object.fromEntries(result.steps.map((step) => [step.version, step.executionMs]));
    expect(ms['0002']).toBeGreaterThanOrEqual(190);
    expect(ms['0001']).toBeLessThan(190);
    const ledger = await db.pool.query<{
      version: string;
      name: string;
      checksum: string;
      execution_ms: number;
    }>(
      'SELECT version, name, checksum, execution_ms FROM tenant_fresh.control_plane_ledger ORDER BY version',
    );
    expect(ledger.rows).toEqual(
      catalog.files.map((file) => ({
        version: file.version,
        name: file.name,
        checksum: file.checksum,
        execution_ms: ms[file.version],
      })),
    );
    expect(await tablesIn(db.pool, 'tenant_fresh')).toEqual(['control_plane_ledger', 'quick', 'slow']);
  });

  it('carries on from the ledger when the tenant was provisioned before (a retry)', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const input = {
      location: location('tenant_again'),
      connectionString: db.url,
      pool: db.pool,
      catalog,
      deploymentId,
    };
    await provisionTenant(input);
    const again = await provisionTenant(input);
    expect(again).toEqual({ fromVersion: '0010', toVersion: '0010', steps: [] });
    expect(await ledgerVersions(db.pool, 'tenant_again')).toEqual(['0001', '0002', '0010']);
  });

  it('reports a failing file by name and line, leaving nothing behind', async () => {
    const catalog = await loadCatalog(fixtureDir('failing'));
    const error = await provisionTenant({
      location: location('tenant_failing'),
      connectionString: db.url,
      pool: db.pool,
      catalog,
      deploymentId,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationFailedError);
    expect(error).toMatchObject({ file: '0003_add_priority.up.sql', sqlState: '42703', line: 4 });
    expect(await tablesIn(db.pool, 'tenant_failing')).toEqual([]);
  });

  it('applies a catalog with a no-transaction file through the engine', async () => {
    const catalog = await loadCatalog(fixtureDir('no_transaction'));
    const result = await provisionTenant({
      location: location('tenant_notx'),
      connectionString: db.url,
      pool: db.pool,
      catalog,
      deploymentId,
    });
    expect(result.steps.map((step) => step.version)).toEqual(['0001', '0002', '0003']);
    expect(await ledgerVersions(db.pool, 'tenant_notx')).toEqual(['0001', '0002', '0003']);
  });

  it('applies each file once when two workers provision the same tenant at once', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const input = {
      location: location('tenant_twice'),
      connectionString: db.url,
      pool: db.pool,
      catalog,
      deploymentId,
    };
    const results = await Promise.all([provisionTenant(input), provisionTenant(input)]);
    expect(results.flatMap((result) => result.steps.map((step) => step.version)).sort()).toEqual([
      '0001',
      '0002',
      '0010',
    ]);
    expect(await ledgerVersions(db.pool, 'tenant_twice')).toEqual(['0001', '0002', '0010']);
  });

  it("marks the schema it creates as this deployment's", async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    await provisionTenant({
      location: location('tenant_marked'),
      connectionString: db.url,
      pool: db.pool,
      catalog,
      deploymentId,
    });
    expect(await schemaComment('tenant_marked')).toBe(ownershipMarker(deploymentId));
  });

  it('refuses to provision into an existing schema it did not create, and changes nothing', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    await db.pool.query('CREATE SCHEMA tenant_squatted; CREATE TABLE tenant_squatted.precious (id int)');
    const error = await provisionTenant({
      location: location('tenant_squatted'),
      connectionString: db.url,
      pool: db.pool,
      catalog,
      deploymentId,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toContain('schema "tenant_squatted"');
    expect(await tablesIn(db.pool, 'tenant_squatted')).toEqual(['precious']);
    expect(await schemaComment('tenant_squatted')).toBeNull();
  });

  it('refuses a schema another deployment provisioned, and changes nothing', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const input = { location: location('tenant_theirs'), connectionString: db.url, pool: db.pool, catalog };
    await provisionTenant({ ...input, deploymentId: otherDeploymentId });
    const error = await provisionTenant({ ...input, deploymentId }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toContain(otherDeploymentId);
    expect(await schemaComment('tenant_theirs')).toBe(ownershipMarker(otherDeploymentId));
  });

  it('adopts the unmarked schema of a tenant registered before markers existed', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    await db.pool.query('CREATE SCHEMA tenant_legacy');
    const result = await provisionTenant({
      location: { ...location('tenant_legacy'), adoptUnmarked: true },
      connectionString: db.url,
      pool: db.pool,
      catalog,
      deploymentId,
    });
    expect(result.toVersion).toBe('0010');
    expect(await schemaComment('tenant_legacy')).toBe(ownershipMarker(deploymentId));
  });

  it('refuses to provision into an existing database it did not create, and changes nothing', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const name = `cpt_tenantdb_${randomBytes(4).toString('hex')}`;
    createdDatabases.push(name);
    await withConnection(testServerUrl(), (client) => client.query(`CREATE DATABASE ${quoteDatabase(name)}`));
    const connectionString = withDatabase(db.url, name);
    const error = await withTenantPool(connectionString, (pool) =>
      provisionTenant({
        location: { isolation: 'DATABASE', databaseName: name, schemaName: null },
        connectionString,
        pool,
        catalog,
        deploymentId,
      }).catch((e: unknown) => e),
    );
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toContain(`database "${name}"`);
    expect(await withTenantPool(connectionString, (pool) => tablesIn(pool, 'public'))).toEqual([]);
  });

  it("creates a DATABASE tenant marked as this deployment's, and carries on when run again", async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const name = `cpt_tenantdb_${randomBytes(4).toString('hex')}`;
    createdDatabases.push(name);
    const connectionString = withDatabase(db.url, name);
    const location = { isolation: 'DATABASE', databaseName: name, schemaName: null } as const;
    await withTenantPool(connectionString, async (pool) => {
      const input = { location, connectionString, pool, catalog, deploymentId };
      await provisionTenant(input);
      expect(await provisionTenant(input)).toEqual({ fromVersion: '0010', toVersion: '0010', steps: [] });
    });
    const marker = await db.pool.query<{ marker: string }>(
      `SELECT shobj_description(oid, 'pg_database') AS marker FROM pg_database WHERE datname = $1`,
      [name],
    );
    expect(marker.rows[0]?.marker).toBe(ownershipMarker(deploymentId));
  });
});

async function withTenantPool<T>(connectionString: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString, max: 2 });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}
