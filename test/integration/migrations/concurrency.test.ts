import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { TransactionMode, loadCatalog, migrateUp } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir, ledgerVersions } from './fixtures.js';

describe('concurrent migrateUp on one schema', () => {
  const db = useTestDatabase();
  const pools: pg.Pool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
  });

  it.each([TransactionMode.PER_TENANT, TransactionMode.PER_MIGRATION])(
    'applies each migration exactly once from two separate pools (%s)',
    async (mode) => {
      const catalog = await loadCatalog(fixtureDir('concurrent'));
      const target = await db.createTenantSchema(`race_${mode.toLowerCase()}`);
      const [a, b] = [0, 1].map(() => new pg.Pool({ connectionString: db.url, max: 2 }));
      pools.push(a!, b!);

      const results = await Promise.all([
        migrateUp(a!, target, catalog, { mode, lockTimeoutMs: 20_000 }),
        migrateUp(b!, target, catalog, { mode, lockTimeoutMs: 20_000 }),
      ]);

      const appliedBy = results.map((r) => r.steps.map((s) => s.version));
      expect([...appliedBy.flat()].sort()).toEqual(['0001', '0002', '0003']);
      expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002', '0003']);
      const rows = await db.pool.query<{ migration: string }>(
        `SELECT migration FROM ${target.schema}.applications ORDER BY migration`,
      );
      expect(rows.rows.map((r) => r.migration)).toEqual(['0002', '0003']);
    },
  );
});
