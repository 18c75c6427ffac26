/**
 * B1's peer segment: node-pg-migrate's runner at its strongest, as the issue names it ("a pool of
 * 4"): its runners keep their connections from tenant to tenant, as our worker's pool does,
 * instead of connecting and disconnecting for every tenant.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runNodePgMigrate } from '../../../bench/lib/baselines.js';
import { createSchemas } from '../../../bench/lib/seed.js';
import { loadCatalog } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { settledSessionCount } from '../../helpers/sessions.js';

const CATALOG_DIR = 'bench/fixtures/catalog';

describe('runNodePgMigrate', () => {
  const db = useTestDatabase();

  it('migrates every schema with its own history, on as many connections as its pool and no more', async () => {
    const catalog = await loadCatalog(CATALOG_DIR);
    const schemas = ['npm_a', 'npm_b', 'npm_c', 'npm_d', 'npm_e', 'npm_f'];
    await createSchemas(db.pool, schemas);
    // One session of its own, opened before: the count below is of the sessions the runner opened.
    const stats = new pg.Client({ connectionString: db.url });
    await stats.connect();
    try {
      const before = await settledSessionCount(stats, db.name);
      const { seconds } = await runNodePgMigrate(db.url, CATALOG_DIR, schemas, 2);
      expect(seconds).toBeGreaterThan(0);
      const opened = (await settledSessionCount(stats, db.name)) - before;
      expect(opened).toBe(2);
    } finally {
      await stats.end();
    }
    for (const schema of schemas) {
      const history = await db.pool.query<{ name: string }>(
        `SELECT name FROM ${pg.escapeIdentifier(schema)}.pgmigrations ORDER BY id`,
      );
      expect(history.rows.map((row) => row.name)).toEqual(
        catalog.files.map((file) => `${file.version}_${file.name}`),
      );
      const tables = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename <> 'pgmigrations'`,
        [schema],
      );
      expect(tables.rows[0]!.n).toBe(4);
    }
  });
});
