import { beforeAll, describe, expect, it } from 'vitest';
import { createExpectedFingerprintStore } from '../../../src/fingerprints/expected-fingerprint-store.js';
import {
  catalogChecksumOf,
  createExpectedFingerprints,
  type ExpectedFingerprintStore,
} from '../../../src/fingerprints/expected-fingerprints.js';
import { readSchemaFingerprint } from '../../../src/fingerprints/read-schema.js';
import { loadCatalog, migrateUp, type MigrationCatalog } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { expectEventually } from '../../helpers/eventually.js';
import { fixtureDir } from '../migrations/fixtures.js';

describe('expected fingerprints', () => {
  const db = useTestDatabase({ controlPlane: true });
  let catalog: MigrationCatalog;
  let saves = 0;
  let store: ExpectedFingerprintStore;

  beforeAll(async () => {
    catalog = await loadCatalog(fixtureDir('fingerprint'));
    const table = createExpectedFingerprintStore(db.pool);
    store = {
      load: (...args) => table.load(...args),
      save: async (...args) => {
        saves += 1;
        await table.save(...args);
      },
    };
  });

  it('equal the fingerprint of a tenant migrated to each version, and leave no scratch schema behind', async () => {
    const expected = await createExpectedFingerprints(catalog, store).all(db.pool);
    expect([...expected.keys()]).toEqual(['0', '0001', '0002', '0003']);
    for (const version of ['0001', '0002', '0003']) {
      const target = db.tenantTarget(`at_${version}`);
      await migrateUp(db.pool, target, catalog, { toVersion: version });
      expect((await readSchemaFingerprint(db.pool, target.schema)).hash, version).toBe(
        expected.get(version)?.hash,
      );
    }
    const { rows } = await db.pool.query(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'fingerprint_scratch_%'`,
    );
    expect(rows).toEqual([]);
  });

  it('are replayed once per catalog: another process reads them from the control plane', async () => {
    const before = saves;
    const fresh = createExpectedFingerprints(catalog, store);
    const again = await fresh.forVersion(db.pool, '2');
    expect(saves).toBe(before);
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM control_plane.expected_fingerprints WHERE catalog_checksum = $1',
      [catalogChecksumOf(catalog)],
    );
    expect(rows[0]?.n).toBe(4);
    expect(again?.hash).toBe(
      (await createExpectedFingerprints(catalog, store).all(db.pool)).get('0002')?.hash,
    );
  });

  it('answer a catalog that cannot be replayed with its failure for a while, without replaying it for every caller', async () => {
    let loads = 0;
    const counting: ExpectedFingerprintStore = {
      load: async (...args) => {
        loads += 1;
        return store.load(...args);
      },
      save: (...args) => store.save(...args),
    };
    const broken = {
      files: [
        {
          version: '0001',
          name: 'create_notes',
          checksum: 'a'.repeat(64),
          upSql: 'CREATE TABLE notes (id int)',
          transactional: true,
        },
        {
          version: '0002',
          name: 'read_elsewhere',
          checksum: 'b'.repeat(64),
          upSql: 'SELECT * FROM no_such_table',
          transactional: true,
        },
      ],
    };
    const kept = createExpectedFingerprints(broken, counting, undefined, { failedReplayKeptMs: 60_000 });
    await expect(kept.all(db.pool)).rejects.toThrow(/replaying 0002_read_elsewhere .*no_such_table/);
    await expect(kept.forVersion(db.pool, '0001')).rejects.toThrow(/no_such_table/);
    expect(loads).toBe(1);

    const retried = createExpectedFingerprints(broken, counting, undefined, { failedReplayKeptMs: 1 });
    await expect(retried.all(db.pool)).rejects.toThrow(/no_such_table/);
    await expectEventually(async () => {
      await expect(retried.all(db.pool)).rejects.toThrow(/no_such_table/);
      expect(loads).toBeGreaterThanOrEqual(3);
    });
  });
});
