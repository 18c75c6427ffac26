import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { MigrationFailedError, loadCatalog } from '../../../src/migrations/index.js';
import type { AppliedStep } from '../../../src/migrations/index.js';
import { provisionTenant, type TenantDatabaseLocation } from '../../../src/tenants/provisioner.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir, ledgerVersions, tablesIn } from '../migrations/fixtures.js';

describe('provisionTenant', () => {
  const db = useTestDatabase();

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
        options: { onApplied: (step) => void seen.push(step) },
      }),
    );
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
    }>('SELECT version, name, checksum, execution_ms FROM tenant_fresh.schema_migrations ORDER BY version');
    expect(ledger.rows).toEqual(
      catalog.files.map((file) => ({
        version: file.version,
        name: file.name,
        checksum: file.checksum,
        execution_ms: ms[file.version],
      })),
    );
    expect(await tablesIn(db.pool, 'tenant_fresh')).toEqual(['quick', 'schema_migrations', 'slow']);
  });

  it('carries on from the ledger when the tenant was provisioned before (a retry)', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const input = { location: location('tenant_again'), connectionString: db.url, pool: db.pool, catalog };
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
    });
    expect(result.steps.map((step) => step.version)).toEqual(['0001', '0002', '0003']);
    expect(await ledgerVersions(db.pool, 'tenant_notx')).toEqual(['0001', '0002', '0003']);
  });

  it('applies each file once when two workers provision the same tenant at once', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const input = { location: location('tenant_twice'), connectionString: db.url, pool: db.pool, catalog };
    const results = await Promise.all([provisionTenant(input), provisionTenant(input)]);
    expect(results.flatMap((result) => result.steps.map((step) => step.version)).sort()).toEqual([
      '0001',
      '0002',
      '0010',
    ]);
    expect(await ledgerVersions(db.pool, 'tenant_twice')).toEqual(['0001', '0002', '0010']);
  });
});
