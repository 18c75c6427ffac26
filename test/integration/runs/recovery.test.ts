import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectEventually } from '../../helpers/eventually.js';
import { ACTOR, useRunHarness } from './run-harness.js';
import { queuePrefixOf } from '../../../src/queue/target-queue.js';
import {
  expectCountersMatchTargets,
  ledgerVersions,
  migrationLogCounts,
  waitForRunEnd,
} from './run-assertions.js';

describe('run recovery', () => {
  const h = useRunHarness('slow');

  async function tenantSchemas(ids: string[]): Promise<string[]> {
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: ids } } });
    return databases.map((d) => d.schemaName!);
  }
  async function expectFullyMigrated(ids: string[]): Promise<void> {
    for (const schema of await tenantSchemas(ids)) {
      expect(await ledgerVersions(h.database.pool, schema)).toEqual(['0001', '0002']);
      expect(await migrationLogCounts(h.database.pool, schema)).toEqual({ '0001': 1, '0002': 1 });
    }
  }

  it('finishes a run whose queue was obliterated mid-run, once the reconciler runs', async () => {
    const ids = await h.createTenants('flush', 12);
    const worker = await h.startWorker();
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 4 }, ACTOR);
    await expectEventually(
      async () => {
        const current = await h.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
        expect(current.succeeded).toBeGreaterThan(0);
        expect(current.pending).toBeGreaterThan(0);
      },
      { timeoutMs: 20_000, intervalMs: 20 },
    );
    await h.queue.queue.obliterate({ force: true });
    const ended = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 12 });
    await expectFullyMigrated(ids);
  });

  it('finishes a run after every Redis key of the deployment vanished mid-run', async () => {
    const ids = await h.createTenants('vanish', 12);
    const worker = await h.startWorker();
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 4 }, ACTOR);
    await expectEventually(
      async () => {
        const current = await h.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
        expect(current.succeeded).toBeGreaterThan(0);
        expect(current.pending).toBeGreaterThan(0);
      },
      { timeoutMs: 20_000, intervalMs: 20 },
    );
    // Jobs, locks, lists and the queue's meta, while workers hold jobs: what a Redis restart
    // without persistence does. Workers finishing then meet "Missing lock for job".
    let cursor = '0';
    do {
      const [next, keys] = await h.redis.scan(cursor, 'MATCH', `${queuePrefixOf(h.config.redisPrefix)}*`);
      cursor = next;
      if (keys.length > 0) await h.redis.del(...keys);
    } while (cursor !== '0');
    const ended = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 12 });
    await expectFullyMigrated(ids);
    await expectCountersMatchTargets(h.db, run.id);
  });

  it('recovers targets of a worker killed with SIGKILL: none half-migrated, none applied twice', async () => {
    const ids = await h.createTenants('killed', 12);
    // node --import tsx runs the worker in this very process, so its pid is the one to kill.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, 'worker-process.ts')],
      {
        env: { ...process.env, ...h.env, TEST_LOCK_DURATION_MS: '1000' },
        stdio: ['ignore', 'pipe', 'inherit'],
        detached: false,
      },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`worker process exited early (${code})`)));
      });
      const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 4 }, ACTOR);
      await expectEventually(
        async () => {
          const running = await h.db.migrationRunTarget.count({
            where: { runId: run.id, status: 'RUNNING' },
          });
          expect(running).toBeGreaterThan(0);
        },
        { timeoutMs: 20_000, intervalMs: 20 },
      );
      child.kill('SIGKILL');
      await exited;
      const stuck = await h.db.migrationRunTarget.count({ where: { runId: run.id, status: 'RUNNING' } });
      expect(stuck).toBeGreaterThan(0);

      const worker = await h.startWorker({ lockDurationMs: 1000 });
      const ended = await waitForRunEnd(h.db, run.id);
      await worker.close();
      expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 12 });
      await expectFullyMigrated(ids);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
