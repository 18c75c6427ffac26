/**
 * Runs that lost their jobs end anyway: the reconciler heals every unfinished run, whatever its
 * status, and a job hash Redis left outside every list does not block re-enqueueing its target.
 * The faults are made by hand on real Redis: a worker that claimed a target and died (claimed
 * here and never finished), Redis losing its keys, a job hash in no list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlanePool } from '../../../src/db/control-plane.js';
import type { ControlPlanePool } from '../../../src/db/control-plane.js';
import { queuePrefixOf } from '../../../src/queue/target-queue.js';
import { claimTarget, finishTarget } from '../../../src/runs/run-machine.js';
import { ownJob } from './run-assertions.js';
import { ACTOR, useRunHarness } from './run-harness.js';
import { expectCountersMatchTargets, ledgerVersions, waitForRunEnd } from './run-assertions.js';

describe('stuck runs', () => {
  const h = useRunHarness('fleet');
  let pool: ControlPlanePool;
  beforeAll(() => {
    pool = createControlPlanePool(h.config.databaseUrl, { maxConnections: 1, applicationName: 'test' });
  });
  afterAll(async () => {
    await pool.end();
  });

  const targetsOf = (runId: string) =>
    h.db.migrationRunTarget.findMany({ where: { runId }, orderBy: { position: 'asc' } });

  it('ends a CANCELLED run whose RUNNING target lost its worker and its job', async () => {
    const ids = await h.createTenants('cancelled', 3);
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 1 }, ACTOR);
    const [first] = await targetsOf(run.id);
    // A worker claimed it and died; then Redis lost everything.
    expect(await claimTarget(pool, ownJob(first!))).toHaveProperty('target');
    await h.queue.queue.obliterate({ force: true });
    const cancelled = await h.service.cancelRun(run.id, ACTOR);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', running: 1, finishedAt: null });

    const worker = await h.startWorker();
    const ended = await waitForRunEnd(h.db, run.id, 15_000);
    await worker.close();
    expect(ended).toMatchObject({ status: 'CANCELLED', succeeded: 1, cancelled: 2, running: 0 });
    const [target] = await targetsOf(run.id);
    expect(target!.status).toBe('SUCCEEDED');
    const database = await h.db.tenantDatabase.findUniqueOrThrow({
      where: { id: target!.tenantDatabaseId! },
    });
    expect(database).toMatchObject({ status: 'ACTIVE', schemaVersion: '0003' });
    expect(await ledgerVersions(h.database.pool, 'tenant_cancelled_000')).toEqual(['0001', '0002', '0003']);
    await expectCountersMatchTargets(h.db, run.id);
  });

  it('ends a HALTED run whose RUNNING target lost its worker and its job', async () => {
    const ids = await h.createTenants('halted', 3);
    const run = await h.service.startMigrationRun(
      { tenants: { ids }, concurrency: 2, maxFailures: 1 },
      ACTOR,
    );
    const [first, second] = await targetsOf(run.id);
    expect(await claimTarget(pool, ownJob(first!))).toHaveProperty('target');
    expect(await claimTarget(pool, ownJob(second!))).toHaveProperty('target');
    await finishTarget(pool, ownJob(second!), second!.id, {
      status: 'FAILED',
      appliedVersions: [],
      reached: undefined,
      error: 'boom',
      errorCode: 'XX000',
    });
    await h.queue.queue.obliterate({ force: true });
    expect(await h.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({
      status: 'HALTED',
      running: 1,
      finishedAt: null,
    });

    const worker = await h.startWorker();
    const ended = await waitForRunEnd(h.db, run.id, 15_000);
    await worker.close();
    expect(ended).toMatchObject({ status: 'HALTED', succeeded: 1, failed: 1, skipped: 1, running: 0 });
    expect((await targetsOf(run.id)).map((t) => t.status)).toEqual(['SUCCEEDED', 'FAILED', 'SKIPPED']);
    await expectCountersMatchTargets(h.db, run.id);
  });

  it('re-enqueues a target whose job hash Redis left outside every list', async () => {
    const ids = await h.createTenants('orphan', 3);
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 3 }, ACTOR);
    const targets = await targetsOf(run.id);
    // What a worker finishing a job as its keys vanished left behind: the hash, in no list.
    const wait = `${queuePrefixOf(h.config.redisPrefix)}:tenant-migrations:wait`;
    for (const target of targets) await h.redis.lrem(wait, 0, target.id);
    for (const target of targets) {
      expect(await h.queue.queue.getJobState(target.id)).toBe('unknown');
      expect(await h.queue.queue.getJob(target.id)).toBeDefined();
    }

    const worker = await h.startWorker();
    const ended = await waitForRunEnd(h.db, run.id, 15_000);
    await worker.close();
    expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 3 });
  });
});
