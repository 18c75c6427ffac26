import { LEDGER_TABLE } from '../../../src/migrations/ledger.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSchemaFingerprint } from '../../../src/fingerprints/read-schema.js';
import { diffDescriptions, formatDifference } from '../../../src/fingerprints/schema-differences.js';
import { loadCatalog, migrateUp, type MigrationCatalog } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir } from '../migrations/fixtures.js';

describe('schema fingerprints', () => {
  const db = useTestDatabase();
  let catalog: MigrationCatalog;

  beforeAll(async () => {
    catalog = await loadCatalog(fixtureDir('fingerprint'));
  });

  async function migrated(name: string, toVersion?: string): Promise<string> {
    const target = db.tenantTarget(name);
    await migrateUp(db.pool, target, catalog, { toVersion: toVersion ?? null });
    return target.schema;
  }

  it('gives two schemas built from the same catalog the same hash whatever their names', async () => {
    const a = await migrated('alpha');
    const b = await migrated('a_much_longer_and_different_name');
    const [fa, fb] = [await readSchemaFingerprint(db.pool, a), await readSchemaFingerprint(db.pool, b)];
    expect(fa.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(fb.hash).toBe(fa.hash);
    expect(JSON.stringify(fa.description)).not.toContain(a);
    expect(fa.description.tables.map((t) => t.name)).toEqual(['tasks', 'users']);
    expect(fa.description.views.map((v) => v.name)).toEqual(['open_tasks']);
    expect(fa.description.triggers.map((t) => t.name)).toEqual(['tasks.tasks_touch']);
    expect(fa.description.types.find((t) => t.name === 'user_role')?.definition).toBe(
      "ENUM ('viewer', 'editor', 'owner')",
    );
  });

  it('leaves the ledger out, so a schema migrated to a version equals its own state whatever its ledger says', async () => {
    const schema = await migrated('ledgerless', '0003');
    const before = await readSchemaFingerprint(db.pool, schema);
    await db.pool.query(`DROP TABLE ${schema}.${LEDGER_TABLE}`);
    expect((await readSchemaFingerprint(db.pool, schema)).hash).toBe(before.hash);
  });

  it('tells versions apart', async () => {
    const v2 = await migrated('at_two', '0002');
    const v3 = await migrated('at_three', '0003');
    expect((await readSchemaFingerprint(db.pool, v2)).hash).not.toBe(
      (await readSchemaFingerprint(db.pool, v3)).hash,
    );
  });

  it('names a different column type, a missing index and an extra table', async () => {
    const expected = await readSchemaFingerprint(db.pool, await migrated('reference'));
    const drifted = await migrated('drifted');
    await db.pool.query(`
      ALTER TABLE ${drifted}.tasks DROP CONSTRAINT tasks_user_id_fkey;
      ALTER TABLE ${drifted}.users ALTER COLUMN tenant_id TYPE integer USING 0;
      DROP INDEX ${drifted}.idx_tasks_status;
      CREATE TABLE ${drifted}.legacy_notes (body text)`);
    const actual = await readSchemaFingerprint(db.pool, drifted);
    expect(actual.hash).not.toBe(expected.hash);
    const lines = diffDescriptions(expected.description, actual.description).map(formatDifference);
    expect(lines).toEqual([
      'CONSTRAINT_MISSING tasks.tasks_user_id_fkey',
      'COLUMN_TYPE users.tenant_id expected "character varying(50)" actual "integer"',
      'TABLE_EXTRA legacy_notes',
      'INDEX_MISSING idx_tasks_status',
    ]);
  });

  it('describes a schema that does not exist as empty', async () => {
    const fingerprint = await readSchemaFingerprint(db.pool, 'tenant_nowhere');
    expect(fingerprint.description.tables).toEqual([]);
  });
});
