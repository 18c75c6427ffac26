import { LEDGER_TABLE } from '../../../src/migrations/ledger.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { adoptSchema, type AdoptionOptions } from '../../../src/fingerprints/adoption.js';
import { createExpectedFingerprintStore } from '../../../src/fingerprints/expected-fingerprint-store.js';
import {
  createExpectedFingerprints,
  type ExpectedFingerprints,
} from '../../../src/fingerprints/expected-fingerprints.js';
import { formatDifference } from '../../../src/fingerprints/schema-differences.js';
import { loadCatalog, type MigrationCatalog } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir, ledgerVersions } from '../migrations/fixtures.js';

// 30 schemas built by hand (no ledger of ours), 10 at each version, with Alembic's history table.
const SCHEMAS = Array.from({ length: 30 }, (_, i) => ({
  schema: `legacy_${String(i).padStart(2, '0')}`,
  version: `000${(i % 3) + 1}`,
}));
const TYPE_DRIFT = 'legacy_05'; // at 0003: users.tenant_id became integer
const INDEX_DRIFT = 'legacy_07'; // at 0002: idx_tasks_status dropped
const VERSION_MAP = { ae1027a6: '0001', '27c6a30d': '0002', c3d2f1e0: '0003' };
const REVISION_OF: Record<string, string> = { '0001': 'ae1027a6', '0002': '27c6a30d', '0003': 'c3d2f1e0' };

describe('adopting schemas that already exist', () => {
  const db = useTestDatabase({ controlPlane: true });
  let catalog: MigrationCatalog;
  let expected: ExpectedFingerprints;

  beforeAll(async () => {
    catalog = await loadCatalog(fixtureDir('fingerprint'));
    expected = createExpectedFingerprints(catalog, createExpectedFingerprintStore(db.pool));
    for (const { schema, version } of SCHEMAS) {
      const client = await db.pool.connect();
      try {
        await client.query(`BEGIN; CREATE SCHEMA ${schema}; SET LOCAL search_path TO ${schema}`);
        for (const file of catalog.files.filter((f) => f.version <= version)) await client.query(file.upSql);
        await client.query(
          `CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
           INSERT INTO alembic_version VALUES ('${REVISION_OF[version]}'); COMMIT`,
        );
      } finally {
        client.release();
      }
    }
    await db.pool.query(`ALTER TABLE ${TYPE_DRIFT}.users ALTER COLUMN tenant_id TYPE integer USING 0`);
    await db.pool.query(`DROP INDEX ${INDEX_DRIFT}.idx_tasks_status`);
  });

  async function adoptAll(options: AdoptionOptions, dryRun: boolean) {
    const results = new Map<string, Awaited<ReturnType<typeof adoptSchema>>>();
    for (const { schema } of SCHEMAS) {
      const target = { schema, lockKey: `${db.name}/${schema}` };
      results.set(schema, await adoptSchema({ pool: db.pool, target, catalog, expected, options, dryRun }));
    }
    return results;
  }

  function expectTrueVersionsAndTwoRefusals(results: Awaited<ReturnType<typeof adoptAll>>) {
    const adopted = SCHEMAS.filter(({ schema }) => results.get(schema)?.decision.ok);
    expect(adopted.map(({ schema }) => schema)).toEqual(
      SCHEMAS.map(({ schema }) => schema).filter((s) => s !== TYPE_DRIFT && s !== INDEX_DRIFT),
    );
    for (const { schema, version } of adopted) {
      expect(results.get(schema)?.decision, schema).toMatchObject({ ok: true, version });
    }
    const refused = (schema: string) => {
      const decision = results.get(schema)?.decision;
      return decision && !decision.ok ? decision.differences.map(formatDifference) : null;
    };
    expect(refused(TYPE_DRIFT)).toEqual([
      'COLUMN_TYPE users.tenant_id expected "character varying(50)" actual "integer"',
    ]);
    expect(refused(INDEX_DRIFT)).toEqual(['INDEX_MISSING idx_tasks_status']);
  }

  it('by FINGERPRINT: the 28 at their true versions, the 2 named with their differences; a dry run stamps nothing', async () => {
    const results = await adoptAll({ source: 'FINGERPRINT' }, true);
    expectTrueVersionsAndTwoRefusals(results);
    const typeDrift = results.get(TYPE_DRIFT)?.decision;
    expect(typeDrift && !typeDrift.ok && typeDrift.reason).toMatch(
      /^no catalog version has this structure; nearest is 0003/,
    );
    expect(await ledgerVersions(db.pool, 'legacy_00')).toEqual([]);
  });

  it('by ALEMBIC with a versionMap: stamps our ledger of the 28 with the catalog checksums, and nothing on the 2', async () => {
    const results = await adoptAll({ source: 'ALEMBIC', versionMap: VERSION_MAP }, false);
    expectTrueVersionsAndTwoRefusals(results);
    expect(await ledgerVersions(db.pool, 'legacy_02')).toEqual(['0001', '0002', '0003']);
    expect(await ledgerVersions(db.pool, 'legacy_01')).toEqual(['0001', '0002']);
    const { rows } = await db.pool.query<{ checksum: string }>(
      `SELECT checksum FROM legacy_00.${LEDGER_TABLE}`,
    );
    expect(rows.map((r) => r.checksum)).toEqual([catalog.files[0]!.checksum]);
    expect(await ledgerVersions(db.pool, TYPE_DRIFT)).toEqual([]);
    expect(await ledgerVersions(db.pool, INDEX_DRIFT)).toEqual([]);
  });

  it('refuses an id the versionMap does not name, and a dirty golang-migrate state', async () => {
    const [one] = [
      await adoptSchema({
        pool: db.pool,
        target: { schema: INDEX_DRIFT, lockKey: 'x' },
        catalog,
        expected,
        options: { source: 'ALEMBIC', versionMap: { other: '0001' } },
        dryRun: true,
      }),
    ];
    expect(one?.decision).toMatchObject({
      ok: false,
      reason: 'alembic_version says 27c6a30d, which the versionMap does not name',
    });
    await db.pool
      .query(`CREATE SCHEMA gm_dirty; CREATE TABLE gm_dirty.schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
      INSERT INTO gm_dirty.schema_migrations VALUES (2, true)`);
    const dirty = await adoptSchema({
      pool: db.pool,
      target: { schema: 'gm_dirty', lockKey: 'y' },
      catalog,
      expected,
      options: { source: 'AUTO' },
      dryRun: false,
    });
    expect(dirty.decision).toMatchObject({
      ok: false,
      source: 'GOLANG_MIGRATE',
      reason: "golang-migrate's version 2 is dirty (a migration failed half-way)",
    });
  });
});
