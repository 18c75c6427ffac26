import { describe, expect, it } from 'vitest';
import { readSchemaFingerprint } from '../../../src/fingerprints/read-schema.js';
import { EXTENSIONS_SCHEMA, loadCatalog, migrateUp } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir } from '../migrations/fixtures.js';

// The fingerprint read is PREPAREd once per connection and run with a generic plan, which the
// connection keeps while it lives. A worker's connection first reads while the tenant database's
// catalogs are small: a fleet registered but not migrated yet (here 200 empty schemas), as a
// first rollout or the bench's B1 finds it. The plan made then seq-scanned pg_index, pg_attrdef,
// pg_constraint, pg_sequence, pg_trigger and pg_enum, so every later read cost O(fleet): at 1,000
// migrated tenants 18-28 ms a read instead of 1.5-2.
const PLANNER_SETTINGS = `SELECT current_setting('enable_seqscan') AS seqscan,
  current_setting('enable_hashjoin') AS hashjoin, current_setting('enable_mergejoin') AS mergejoin,
  current_setting('jit') AS jit, current_setting('plan_cache_mode') AS mode`;

describe('the fingerprint read’s plan', () => {
  const db = useTestDatabase();

  it('reads the catalogs by index even when made while they were small', async () => {
    const catalog = await loadCatalog(fixtureDir('fingerprint'));
    const empty = Array.from({ length: 200 }, (_, i) => `plan_empty_${i}`);
    await db.pool.query(empty.map((schema) => `CREATE SCHEMA ${schema}`).join(';\n'));
    const target = db.tenantTarget('plan_migrated');
    await migrateUp(db.pool, target, catalog, {});

    const client = await db.pool.connect();
    try {
      // The connection's first read prepares the statement and makes its generic plan.
      await readSchemaFingerprint(client, empty[0]!);
      const before = await readSchemaFingerprint(client, target.schema);
      // The plan it keeps, as the next read on this connection would run it: under the read's own
      // search_path, since a prepared statement is planned again under another one.
      const results = (await client.query(`BEGIN; SET LOCAL search_path TO ${EXTENSIONS_SCHEMA};
        SET LOCAL plan_cache_mode = force_generic_plan;
        EXPLAIN (COSTS OFF) EXECUTE fingerprint_describe_schema('${target.schema}', ARRAY['x']); COMMIT`)) as unknown as {
        rows: { 'QUERY PLAN': string }[];
      }[];
      const plan = results[3]!.rows.map((row) => row['QUERY PLAN']);
      expect(plan.length).toBeGreaterThan(20);
      expect(plan.filter((line) => /Seq Scan on pg_/.test(line))).toEqual([]);

      // The read leaves no planner setting behind in a transaction it runs in (the expected
      // fingerprints' replay reads between a catalog's files, inside one transaction).
      await client.query('BEGIN');
      const inside = await readSchemaFingerprint(client, target.schema);
      const settings = await client.query<Record<string, string>>(PLANNER_SETTINGS);
      await client.query('ROLLBACK');
      expect(inside.hash).toBe(before.hash);
      const { rows: defaults } = await db.pool.query<Record<string, string>>(PLANNER_SETTINGS);
      expect(settings.rows[0]).toEqual(defaults[0]);
    } finally {
      client.release();
    }
  });
});
