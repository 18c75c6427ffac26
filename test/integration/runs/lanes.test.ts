import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectEventually } from '../../helpers/eventually.js';
import { ACTOR, useRunHarness } from './run-harness.js';
import {
  expectCountersMatchTargets,
  ledgerVersions,
  migrationLogCounts,
  waitForRunEnd,
} from './run-assertions.js';

// A job works several targets of a run one after the other (a lane); these tests kill its worker
// half-way through and check what the next worker makes of it.
describe('lanes', () => {
  const h = useRunHarness('slow', { TARGET_BATCH_SIZE: '4' });

  const targetsOf = (runId: string) =>
    h.db.migrationRunTarget.findMany({ where: { runId }, orderBy: { position: 'asc' } });

  async function expectFullyMigrated(ids: string[]): Promise<void> {
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: ids } } });
    for (const { schemaName } of databases) {
      expect(await ledgerVersions(h.database.pool, schemaName!)).toEqual(['0001', '0002']);
      expect(await migrationLogCounts(h.database.pool, schemaName!)).toEqual({ '0001': 1, '0002': 1 });
    }
  }

  /** A worker process of its own (so it can be killed), ready to take jobs. */
  async function startWorkerProcess(): Promise<{ child: ChildProcess; exited: Promise<unknown> }> {
    // node --import tsx runs the worker in this very process, so its pid is the one to kill.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, 'worker-process.ts')],
      {
        env: { ...process.env, ...h.env, TEST_LOCK_DURATION_MS: '1000' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`worker process exited early (${code})`)));
    });
    return { child, exited };
  }

  /** Waits until a job holds a target RUNNING after finishing another: a lane half-way. */
  async function waitForLaneMidway(runId: string): Promise<string> {
    let lane = '';
    await expectEventually(
      async () => {
        const targets = await targetsOf(runId);
        const held = targets.find((t) => t.status === 'RUNNING' && t.jobId !== null && t.jobId !== t.id);
        expect(held).toBeDefined();
        const finished = targets.filter((t) => t.jobId === held!.jobId && t.status === 'SUCCEEDED');
        expect(finished.length).toBeGreaterThan(0);
        lane = held!.jobId!;
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    return lane;
  }

  it('works a run in lanes, keeping the window, with every target once', async () => {
    const ids = await h.createTenants('window', 12);
    const worker = await h.startWorker();
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 2 }, ACTOR);
    let widest = 0;
    let ended = await h.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
    while (ended.finishedAt === null) {
      const inFlight = await h.db.migrationRunTarget.count({
        where: { runId: run.id, status: { in: ['QUEUED', 'RUNNING'] } },
      });
      widest = Math.max(widest, inFlight);
      ended = await h.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
    }
    await worker.close();
    expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 12 });
    expect(widest).toBeLessThanOrEqual(2);
    const targets = await targetsOf(run.id);
    // Two lanes of at most four targets each took turns: fewer jobs than targets.
    const jobs = new Set(targets.map((t) => t.jobId));
    expect(jobs.size).toBeLessThan(12);
    for (const job of jobs) expect(targets.filter((t) => t.jobId === job).length).toBeLessThanOrEqual(4);
    expect(targets.every((t) => t.attempts === 1)).toBe(true);
    await expectFullyMigrated(ids);
    await expectCountersMatchTargets(h.db, run.id);
  });

  it('takes no further targets once its worker is closing: the next worker takes them', async () => {
    const ids = await h.createTenants('closing', 12);
    const worker = await h.startWorker();
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 2 }, ACTOR);
    await waitForLaneMidway(run.id);
    // close() stops new turns at once; a turn decided just before may still begin a moment later.
    const closing = worker.close();
    const closedAt = Date.now();
    await closing;
    const after = await targetsOf(run.id);
    const claimedLater = after.filter((t) => t.startedAt && t.startedAt.getTime() > closedAt + 100);
    expect(claimedLater).toEqual([]);
    expect(after.filter((t) => t.status === 'RUNNING')).toHaveLength(0);
    expect(after.filter((t) => t.status === 'SUCCEEDED').length).toBeLessThan(12);
    const next = await h.startWorker();
    const ended = await waitForRunEnd(h.db, run.id, 30_000);
    await next.close();
    expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 12 });
    await expectFullyMigrated(ids);
    await expectCountersMatchTargets(h.db, run.id);
  });

  for (const redisLost of [false, true]) {
    it(`redoes only the target a killed worker's lane held${redisLost ? ', after Redis lost its jobs' : ''}`, async () => {
      const ids = await h.createTenants(redisLost ? 'lostlane' : 'killlane', 12);
      const { child, exited } = await startWorkerProcess();
      try {
        const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 2 }, ACTOR);
        const lane = await waitForLaneMidway(run.id);
        child.kill('SIGKILL');
        await exited;
        // Only the reconciler can heal once the job is gone: it must look for the lane's job.
        if (redisLost) await h.queue.queue.obliterate({ force: true });
        const before = await targetsOf(run.id);
        const finished = before.filter((t) => t.status === 'SUCCEEDED');
        const held = before.filter((t) => t.status === 'RUNNING' && t.jobId === lane);
        expect(held).toHaveLength(1);

        const worker = await h.startWorker({ lockDurationMs: 1000 });
        const ended = await waitForRunEnd(h.db, run.id, 30_000);
        await worker.close();
        expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 12 });
        const after = await targetsOf(run.id);
        // The finished ones stayed finished: neither claimed nor finished again.
        for (const target of finished) {
          expect(after.find((t) => t.id === target.id)).toMatchObject({
            status: 'SUCCEEDED',
            attempts: target.attempts,
            finishedAt: target.finishedAt,
          });
        }
        // The held one was claimed again and finished.
        expect(after.find((t) => t.id === held[0]!.id)).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
        await expectFullyMigrated(ids);
        await expectCountersMatchTargets(h.db, run.id);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    });
  }
});
