/**
 * Provisioning and rollbacks pin a catalog release too, like migration runs: a worker runs the
 * pinned release's SQL whatever its own disk holds. Catalog A is the fleet fixture (0001-0003),
 * catalog B is A plus 0004 and 0005, every version with a down file.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotCatalog } from '../../../src/catalog-releases/release-snapshot.js';
import { composeServices, type Composition } from '../../../src/composition.js';
import { loadConfig } from '../../../src/config.js';
import { PreconditionFailedError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logger.js';
import { ACTOR, FIXTURES, useRunHarness } from './run-harness.js';
import { ledgerVersions, waitForRunEnd } from './run-assertions.js';

describe('release pinning of provisioning and rollbacks', () => {
  // This harness is the process booted with catalog A; its worker is the only worker.
  const h = useRunHarness('fleet');
  let b: Composition;

  beforeAll(async () => {
    b = await composeServices(loadConfig({ ...h.env, MIGRATIONS_DIR: path.join(FIXTURES, 'reversible') }), {
      logger: createLogger('silent'),
      name: 'api-b',
    });
  });
  afterAll(async () => {
    await b?.close();
  });

  async function pinnedChecksum(runId: string): Promise<string | undefined> {
    const run = await h.db.migrationRun.findUniqueOrThrow({
      where: { id: runId },
      include: { catalogRelease: true },
    });
    return run.catalogRelease?.checksum;
  }

  it('provisions a tenant created on an API with catalog B to B, on a worker booted with A', async () => {
    expect(h.catalog.latest).toBe('0003');
    await h.startWorker();
    const { tenant, provisioning } = await b.services.tenants.createTenant({ name: 'pinned-new' }, ACTOR);
    const ended = await waitForRunEnd(h.db, provisioning.id);
    expect(ended).toMatchObject({ kind: 'PROVISION', status: 'SUCCEEDED', targetVersion: '0005' });
    expect(await pinnedChecksum(provisioning.id)).toBe(snapshotCatalog(b.catalog).checksum);
    expect(await ledgerVersions(h.database.pool, 'tenant_pinned_new')).toEqual([
      '0001',
      '0002',
      '0003',
      '0004',
      '0005',
    ]);
    const registered = await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenant.tenantId } });
    expect(registered.status).toBe('ACTIVE');
  });

  it('rolls back with the release that holds the down files, from an API booted with A', async () => {
    await h.startWorker();
    const ids = await h.createTenants('pinned_back', 2);
    const up = await b.services.runs.startMigrationRun({ targetVersion: '0005', tenants: { ids } }, ACTOR);
    expect(await waitForRunEnd(h.db, up.id)).toMatchObject({ status: 'SUCCEEDED', succeeded: 2 });

    // A's own release has no 0004 or 0005: the rollback must take B's down files 0005, 0004, 0003.
    const back = await h.service.startRollback({ targetVersion: '0002', tenants: { ids } }, ACTOR);
    expect(await waitForRunEnd(h.db, back.id)).toMatchObject({ status: 'SUCCEEDED', succeeded: 2 });
    expect(await pinnedChecksum(back.id)).toBe(snapshotCatalog(b.catalog).checksum);
    for (const index of ['000', '001']) {
      expect(await ledgerVersions(h.database.pool, `tenant_pinned_back_${index}`)).toEqual(['0001', '0002']);
      const tables = await h.database.pool.query<{ t: string }>(
        `SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1`,
        [`tenant_pinned_back_${index}`],
      );
      expect(tables.rows.map((row) => row.t)).not.toContain('stock_moves');
    }
  });

  it("compares each moved tenant's structure with the pinned release's expected one, not the worker's disk catalog", async () => {
    await h.startWorker();
    const ids = await h.createTenants('pinned_fp', 2);
    // 0005 exists only in B: the worker's own catalog (A) has no expected structure for it.
    const up = await b.services.runs.startMigrationRun({ targetVersion: '0005', tenants: { ids } }, ACTOR);
    expect(await waitForRunEnd(h.db, up.id)).toMatchObject({ status: 'SUCCEEDED', succeeded: 2 });
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: ids } } });
    expect(databases).toHaveLength(2);
    for (const database of databases) {
      expect(database).toMatchObject({ schemaVersion: '0005', fingerprintMatches: true });
      expect(database.fingerprintExpectedHash).toBe(database.fingerprintHash);
    }
    // A VERIFY run started on B checks them against B's expectations too.
    await h.db.tenantDatabase.updateMany({
      where: { tenantId: { in: ids } },
      data: { fingerprintMatches: null, fingerprintExpectedHash: null },
    });
    const verify = await b.services.runs.startVerifyRun({ tenants: { ids } }, ACTOR);
    expect(await waitForRunEnd(h.db, verify.id)).toMatchObject({ status: 'SUCCEEDED', succeeded: 2 });
    for (const database of await h.db.tenantDatabase.findMany({ where: { tenantId: { in: ids } } })) {
      expect(database.fingerprintMatches).toBe(true);
    }
  });

  it('pins the API release when it holds every down file a rollback needs', async () => {
    await h.startWorker();
    const ids = await h.createTenants('pinned_own', 1);
    const up = await h.service.startMigrationRun({ targetVersion: '0003', tenants: { ids } }, ACTOR);
    expect(await waitForRunEnd(h.db, up.id)).toMatchObject({ status: 'SUCCEEDED' });
    const back = await h.service.startRollback({ targetVersion: '0001', tenants: { ids } }, ACTOR);
    expect(await waitForRunEnd(h.db, back.id)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await pinnedChecksum(back.id)).toBe(snapshotCatalog(h.catalog).checksum);
  });
});

describe('a rollback no stored release can make', () => {
  // Catalog A again; the only other release is the rolling fixture, whose 0005 has no down file.
  const h = useRunHarness('fleet');

  it('is refused naming the missing down file, and nothing is created', async () => {
    const rolling = await composeServices(
      loadConfig({ ...h.env, MIGRATIONS_DIR: path.join(FIXTURES, 'rolling') }),
      { logger: createLogger('silent'), name: 'api-rolling' },
    );
    try {
      await h.startWorker();
      const ids = await h.createTenants('stuck', 1);
      const up = await rolling.services.runs.startMigrationRun(
        { targetVersion: '0005', tenants: { ids } },
        ACTOR,
      );
      expect(await waitForRunEnd(h.db, up.id)).toMatchObject({ status: 'SUCCEEDED' });
      const before = await h.db.migrationRun.count();
      const refused = await h.service.startRollback({ targetVersion: '0002', tenants: { ids } }, ACTOR).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(PreconditionFailedError);
      expect((refused as Error).message).toMatch(/0005_create\.stock_moves\.down\.sql/);
      expect(await h.db.migrationRun.count()).toBe(before);
      expect(await ledgerVersions(h.database.pool, 'tenant_stuck_000')).toHaveLength(5);
    } finally {
      await rolling.close();
    }
  });
});
