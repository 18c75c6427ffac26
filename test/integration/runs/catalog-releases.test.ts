import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { snapshotCatalog } from '../../../src/catalog-releases/release-snapshot.js';
import { composeServices } from '../../../src/composition.js';
import { loadConfig } from '../../../src/config.js';
import { ValidationError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logger.js';
import { ACTOR, FIXTURES, useRunHarness } from './run-harness.js';
import { ledgerVersions, waitForRunEnd } from './run-assertions.js';

describe('catalog releases', () => {
  // The API (this harness) boots with catalog B: the fleet catalog plus 0004 and 0005.
  const h = useRunHarness('rolling');

  async function releaseCount(): Promise<number> {
    const result = await h.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM control_plane.catalog_releases',
    );
    return result.rows[0]!.n;
  }

  it('lets an old worker (catalog A) run a run planned with the API release (catalog B) on every tenant', async () => {
    // The old worker: its disk has only 0001-0003. It is the only worker.
    const old = await composeServices(
      loadConfig({ ...h.env, MIGRATIONS_DIR: path.join(FIXTURES, 'fleet') }),
      {
        logger: createLogger('silent'),
        name: 'old-worker',
      },
    );
    try {
      expect(old.catalog.latest).toBe('0003');
      const worker = await old.startWorker();
      const ids = await h.createTenants('rolling', 3);
      const run = await h.service.startMigrationRun({ targetVersion: '0005', tenants: { ids } }, ACTOR);
      const ended = await waitForRunEnd(h.db, run.id);
      expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 3 });
      for (const index of ['000', '001', '002']) {
        expect(await ledgerVersions(h.database.pool, `tenant_rolling_${index}`)).toEqual([
          '0001',
          '0002',
          '0003',
          '0004',
          '0005',
        ]);
      }
      const pinned = await h.db.migrationRun.findUniqueOrThrow({
        where: { id: run.id },
        include: { catalogRelease: true },
      });
      expect(pinned.catalogRelease?.checksum).toBe(snapshotCatalog(h.catalog).checksum);
      await worker.close();
    } finally {
      await old.close();
    }
  });

  it('stores each catalog once: publishing the same directory again adds nothing', async () => {
    const before = await releaseCount();
    expect(before).toBeGreaterThanOrEqual(2);
    const again = await composeServices(
      loadConfig({ ...h.env, MIGRATIONS_DIR: path.join(FIXTURES, 'fleet') }),
      {
        logger: createLogger('silent'),
        name: 'again',
      },
    );
    await again.close();
    expect(await releaseCount()).toBe(before);
  });

  it('pins the release named by catalogChecksum and refuses one that is not stored', async () => {
    const fleet = await composeServices(
      loadConfig({ ...h.env, MIGRATIONS_DIR: path.join(FIXTURES, 'fleet') }),
      {
        logger: createLogger('silent'),
        name: 'fleet',
      },
    );
    await fleet.close();
    const fleetChecksum = snapshotCatalog(fleet.catalog).checksum;
    await expect(
      h.service.startMigrationRun({ targetVersion: '0005', catalogChecksum: fleetChecksum }, ACTOR),
    ).rejects.toMatchObject({ constructor: ValidationError, field: 'targetVersion' });
    await expect(
      h.service.startMigrationRun({ catalogChecksum: 'f'.repeat(64) }, ACTOR),
    ).rejects.toMatchObject({ constructor: ValidationError, field: 'catalogChecksum' });
    await expect(h.service.startMigrationRun({ catalogChecksum: 'nope' }, ACTOR)).rejects.toMatchObject({
      field: 'catalogChecksum',
    });
  });
});
