import { describe, expect, it } from 'vitest';
import { createControlPlanePool } from '../../../src/db/control-plane.js';
import {
  ConflictError,
  PreconditionFailedError,
  ValidationError,
  NotFoundError,
} from '../../../src/errors.js';
import { claimTarget, finishTarget } from '../../../src/runs/run-machine.js';
import { ownJob } from './run-assertions.js';
import { expectEventually } from '../../helpers/eventually.js';
import { ACTOR, useRunHarness } from './run-harness.js';
import {
  expectCountersMatchTargets,
  ledgerVersions,
  migrationLogCounts,
  waitForRunEnd,
  waitForSubscriber,
} from './run-assertions.js';

describe('migration runs', () => {
  const h = useRunHarness('fleet');

  const schemaOf = (name: string) => `tenant_${name}`;
  async function tenantNames(ids: string[]): Promise<string[]> {
    const tenants = await h.db.tenant.findMany({
      where: { tenantId: { in: ids } },
      orderBy: { name: 'asc' },
    });
    return tenants.map((t) => t.name);
  }
  async function bringTo(ids: string[], version: string): Promise<void> {
    const run = await h.service.startMigrationRun(
      { targetVersion: version, tenants: { ids }, concurrency: 8 },
      ACTOR,
    );
    expect((await waitForRunEnd(h.db, run.id)).status).toBe('SUCCEEDED');
  }
  async function seedDuplicates(name: string): Promise<void> {
    await h.database.pool.query(`INSERT INTO ${schemaOf(name)}.items (name) VALUES ('dup'), ('dup')`);
  }
  async function fixDuplicates(name: string): Promise<void> {
    await h.database.pool.query(`DELETE FROM ${schemaOf(name)}.items WHERE name = 'dup'`);
  }

  it('validates its input before changing anything', async () => {
    await expect(h.service.startMigrationRun({ targetVersion: '0042' }, ACTOR)).rejects.toMatchObject({
      constructor: ValidationError,
      field: 'targetVersion',
    });
    await expect(h.service.startMigrationRun({ concurrency: 0 }, ACTOR)).rejects.toMatchObject({
      field: 'concurrency',
    });
    await expect(h.service.startMigrationRun({ concurrency: 1001 }, ACTOR)).rejects.toMatchObject({
      field: 'concurrency',
    });
    await expect(h.service.startMigrationRun({ canarySize: 0 }, ACTOR)).rejects.toMatchObject({
      field: 'canarySize',
    });
    await expect(h.service.startMigrationRun({ maxFailures: 0 }, ACTOR)).rejects.toMatchObject({
      field: 'maxFailures',
    });
    await expect(
      h.service.startMigrationRun({ tenants: { ids: ['00000000-0000-0000-0000-000000000000'] } }, ACTOR),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      h.service.startMigrationRun({ tenants: { environment: ['STAGING'], status: ['SUSPENDED'] } }, ACTOR),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await h.db.migrationRun.count()).toBe(0);
  });

  it('migrates a fleet of 30 with never more than 4 targets in the window, each file once', async () => {
    const ids = await h.createTenants('fleet', 30);
    const worker = await h.startWorker();
    let maxActive = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [row] = await h.database.pool
          .query<{ n: number }>(
            `SELECT count(*)::int AS n FROM control_plane.migration_run_targets WHERE status IN ('queued', 'running')`,
          )
          .then((r) => r.rows);
        maxActive = Math.max(maxActive, row?.n ?? 0);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 4 }, ACTOR);
    expect(run.total).toBe(30);
    const ended = await waitForRunEnd(h.db, run.id);
    sampling = false;
    await sampler;
    await worker.close();

    expect(ended).toMatchObject({
      status: 'SUCCEEDED',
      total: 30,
      succeeded: 30,
      pending: 0,
      running: 0,
      failed: 0,
    });
    expect(maxActive).toBeGreaterThan(0);
    expect(maxActive).toBeLessThanOrEqual(4);
    for (const name of await tenantNames(ids)) {
      expect(await ledgerVersions(h.database.pool, schemaOf(name))).toEqual(['0001', '0002', '0003']);
      expect(await migrationLogCounts(h.database.pool, schemaOf(name))).toEqual({
        '0001': 1,
        '0002': 1,
        '0003': 1,
      });
    }
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: ids } } });
    expect(databases.every((d) => d.schemaVersion === '0003')).toBe(true);
    const targets = await h.db.migrationRunTarget.findMany({ where: { runId: run.id } });
    expect(
      targets.every(
        (t) => t.status === 'SUCCEEDED' && t.appliedVersions.length === 3 && t.toVersion === '0003',
      ),
    ).toBe(true);
  });

  it('fails only the tenants whose data breaks a migration, and a retry completes them', async () => {
    const ids = await h.createTenants('bad', 6);
    const names = await tenantNames(ids);
    const worker = await h.startWorker();
    await bringTo(ids, '0002');
    const broken = [names[1]!, names[4]!];
    for (const name of broken) await seedDuplicates(name);

    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 3 }, ACTOR);
    const ended = await waitForRunEnd(h.db, run.id);
    expect(ended).toMatchObject({ status: 'FAILED', succeeded: 4, failed: 2 });
    const targets = await h.db.migrationRunTarget.findMany({
      where: { runId: run.id },
      include: { tenant: true },
    });
    for (const target of targets) {
      if (broken.includes(target.tenant!.name)) {
        expect(target.status).toBe('FAILED');
        expect(target.errorCode).toBe('23505');
        expect(target.error).toContain('0003_unique_item_names');
        expect(target.error).toContain('23505');
        expect(target.attempts).toBe(1);
      } else {
        expect(target.status).toBe('SUCCEEDED');
      }
    }
    const brokenDb = await h.db.tenantDatabase.findFirstOrThrow({
      where: { schemaName: schemaOf(broken[0]!) },
    });
    expect(brokenDb.lastError).toContain('23505');
    expect(brokenDb.schemaVersion).toBe('0002');

    for (const name of broken) await fixDuplicates(name);
    const retried = await h.service.retryRun(run.id, ACTOR);
    expect(['QUEUED', 'RUNNING']).toContain(retried.status);
    const again = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(again).toMatchObject({ status: 'SUCCEEDED', succeeded: 6, failed: 0 });
    for (const name of names)
      expect(await ledgerVersions(h.database.pool, schemaOf(name))).toEqual(['0001', '0002', '0003']);
    await expect(h.service.retryRun(run.id, ACTOR)).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it('halts at maxFailures and skips what never started', async () => {
    const ids = await h.createTenants('halt', 8);
    const names = await tenantNames(ids);
    const worker = await h.startWorker();
    await bringTo(ids, '0002');
    for (const name of names) await seedDuplicates(name);

    const run = await h.service.startMigrationRun(
      { tenants: { ids }, concurrency: 1, maxFailures: 2 },
      ACTOR,
    );
    const ended = await waitForRunEnd(h.db, run.id);
    expect(ended).toMatchObject({ status: 'HALTED', failed: 2, skipped: 6, succeeded: 0 });
    const skipped = await h.db.migrationRunTarget.findMany({ where: { runId: run.id, status: 'SKIPPED' } });
    expect(skipped).toHaveLength(6);
    expect(skipped.every((t) => t.attempts === 0 && t.startedAt === null)).toBe(true);

    for (const name of names) await fixDuplicates(name);
    await h.service.retryRun(run.id, ACTOR);
    const again = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(again).toMatchObject({ status: 'SUCCEEDED', succeeded: 8 });
  });

  it('keeps the run counters equal to a recount through failures, a halt and retries', async () => {
    const ids = await h.createTenants('count', 10);
    const names = await tenantNames(ids);
    const worker = await h.startWorker();
    await bringTo(ids, '0002');
    const broken = [names[2]!, names[5]!, names[6]!];
    for (const name of broken) await seedDuplicates(name);

    // A window of 2 makes the halt leave targets to skip whatever the timing: once two of the
    // broken targets (positions 2, 5, 6) have been admitted, nothing else is admitted before one
    // of them fails. With 3, fast successes could admit every target before the second failure.
    const run = await h.service.startMigrationRun(
      { tenants: { ids }, concurrency: 2, maxFailures: 2, canarySize: 2 },
      ACTOR,
    );
    const halted = await waitForRunEnd(h.db, run.id);
    // Targets already running when the second failure halts the run still finish.
    expect(halted.status).toBe('HALTED');
    expect(halted.failed).toBeGreaterThanOrEqual(2);
    expect(halted.skipped).toBeGreaterThan(0);
    await expectCountersMatchTargets(h.db, run.id);

    await fixDuplicates(broken[0]!);
    await h.service.retryRun(run.id, ACTOR);
    const failed = await waitForRunEnd(h.db, run.id);
    expect(['HALTED', 'FAILED']).toContain(failed.status);
    expect(failed).toMatchObject({ failed: 2, running: 0 });
    await expectCountersMatchTargets(h.db, run.id);

    for (const name of broken.slice(1)) await fixDuplicates(name);
    await h.service.retryRun(run.id, ACTOR);
    const again = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(again).toMatchObject({ status: 'SUCCEEDED', succeeded: 10, failed: 0, pending: 0, running: 0 });
    await expectCountersMatchTargets(h.db, run.id);
  });

  it('stops after a failing canary without starting any other target', async () => {
    const ids = await h.createTenants('canary', 6);
    const names = await tenantNames(ids);
    const worker = await h.startWorker();
    await bringTo(ids, '0002');
    await seedDuplicates(names[0]!);

    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 4, canarySize: 2 }, ACTOR);
    const ended = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(ended.status).toBe('HALTED');
    const targets = await h.db.migrationRunTarget.findMany({
      where: { runId: run.id },
      orderBy: { position: 'asc' },
    });
    expect(targets.slice(0, 2).every((t) => t.canary)).toBe(true);
    expect(targets[0]!.status).toBe('FAILED');
    for (const target of targets.slice(2)) {
      expect(target.canary).toBe(false);
      expect(target.status).toBe('SKIPPED');
      expect(target.attempts).toBe(0);
    }
    for (const name of names.slice(2))
      expect(await ledgerVersions(h.database.pool, schemaOf(name))).toEqual(['0001', '0002']);
  });

  it('records the planned SQL on a dry run and changes no tenant', async () => {
    const ids = await h.createTenants('dry', 4);
    const names = await tenantNames(ids);
    const worker = await h.startWorker();
    await bringTo(ids, '0002');

    const run = await h.service.startMigrationRun({ tenants: { ids }, dryRun: true }, ACTOR);
    const ended = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(ended).toMatchObject({ status: 'SUCCEEDED', dryRun: true, succeeded: 4 });
    const targets = await h.db.migrationRunTarget.findMany({ where: { runId: run.id } });
    for (const target of targets) {
      expect(target.plannedSql).toContain('0003_unique_item_names.up.sql');
      expect(target.plannedSql).toContain('CREATE UNIQUE INDEX items_name_key');
      expect(target.appliedVersions).toEqual([]);
    }
    for (const name of names)
      expect(await ledgerVersions(h.database.pool, schemaOf(name))).toEqual(['0001', '0002']);
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: ids } } });
    expect(databases.every((d) => d.schemaVersion === '0002')).toBe(true);
  });

  it('rolls tenants back to an earlier version, reverting ledger and schema', async () => {
    const ids = await h.createTenants('back', 3);
    const names = await tenantNames(ids);
    const worker = await h.startWorker();
    await bringTo(ids, '0003');

    const run = await h.service.startRollback({ targetVersion: '0001', tenants: { ids } }, ACTOR);
    const ended = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(ended).toMatchObject({ kind: 'ROLLBACK', status: 'SUCCEEDED', succeeded: 3 });
    for (const name of names) {
      expect(await ledgerVersions(h.database.pool, schemaOf(name))).toEqual(['0001']);
      const columns = await h.database.pool.query(
        `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'items' ORDER BY 1`,
        [schemaOf(name)],
      );
      expect(columns.rows.map((r) => r.column_name)).toEqual(['id', 'name']);
    }
    const target = await h.db.migrationRunTarget.findFirstOrThrow({ where: { runId: run.id } });
    expect(target).toMatchObject({
      fromVersion: '0003',
      toVersion: '0001',
      appliedVersions: ['0003', '0002'],
    });
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: ids } } });
    expect(databases.every((d) => d.schemaVersion === '0001')).toBe(true);
  });

  it('refuses a second run over tenants a run holds, and applies each migration once', async () => {
    const ids = await h.createTenants('overlap', 6);
    const names = await tenantNames(ids);
    const worker = await h.startWorker();
    const results = await Promise.allSettled([
      h.service.startMigrationRun({ tenants: { ids }, concurrency: 3 }, ACTOR),
      h.service.startMigrationRun({ tenants: { ids }, concurrency: 3 }, ACTOR),
    ]);
    const accepted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(accepted).toHaveLength(1);
    expect(refused[0]).toBeInstanceOf(ConflictError);
    const ended = await waitForRunEnd(h.db, accepted[0]!.id);
    await worker.close();
    expect(ended.status).toBe('SUCCEEDED');
    for (const name of names) {
      expect(await migrationLogCounts(h.database.pool, schemaOf(name))).toEqual({
        '0001': 1,
        '0002': 1,
        '0003': 1,
      });
    }
  });

  it('shows a tenant database MIGRATING while its target runs, and ACTIVE again however it ends', async () => {
    const ids = await h.createTenants('dbstatus', 3);
    const pool = createControlPlanePool(h.config.databaseUrl, { maxConnections: 1, applicationName: 'test' });
    const statusOf = async (targetId: string) => {
      const target = await h.db.migrationRunTarget.findUniqueOrThrow({
        where: { id: targetId },
        include: { tenantDatabase: true },
      });
      return target.tenantDatabase!;
    };
    try {
      const dry = await h.service.startMigrationRun({ tenants: { ids: [ids[0]!] }, dryRun: true }, ACTOR);
      const [dryTarget] = await h.db.migrationRunTarget.findMany({ where: { runId: dry.id } });
      expect(await claimTarget(pool, ownJob(dryTarget!))).toHaveProperty('target');
      // A dry run touches nothing, the status included.
      expect((await statusOf(dryTarget!.id)).status).toBe('ACTIVE');
      await finishTarget(pool, ownJob(dryTarget!), dryTarget!.id, {
        status: 'SUCCEEDED',
        fromVersion: null,
        toVersion: null,
        appliedVersions: [],
        plannedSql: '-- nothing',
      });
      expect((await statusOf(dryTarget!.id)).status).toBe('ACTIVE');

      const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 3 }, ACTOR);
      const [failing, succeeding, untouched] = await h.db.migrationRunTarget.findMany({
        where: { runId: run.id },
        orderBy: { position: 'asc' },
      });
      for (const target of [failing!, succeeding!]) {
        expect(await claimTarget(pool, ownJob(target))).toHaveProperty('target');
        expect((await statusOf(target.id)).status).toBe('MIGRATING');
      }
      expect((await statusOf(untouched!.id)).status).toBe('ACTIVE');

      await finishTarget(pool, ownJob(failing!), failing!.id, {
        status: 'FAILED',
        appliedVersions: [],
        reached: undefined,
        error: 'boom',
        errorCode: 'XX000',
      });
      expect(await statusOf(failing!.id)).toMatchObject({ status: 'ACTIVE', lastError: 'boom' });
      await finishTarget(pool, ownJob(succeeding!), succeeding!.id, {
        status: 'SUCCEEDED',
        fromVersion: null,
        toVersion: '0001',
        appliedVersions: ['0001'],
        plannedSql: null,
      });
      expect(await statusOf(succeeding!.id)).toMatchObject({
        status: 'ACTIVE',
        lastError: null,
        schemaVersion: '0001',
      });
      await h.service.cancelRun(run.id, ACTOR);
    } finally {
      await pool.end();
    }
  });

  it('cancels a run: pending targets are cancelled and nothing more starts', async () => {
    const ids = await h.createTenants('cancel', 5);
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 1 }, ACTOR);
    const cancelled = await h.service.cancelRun(run.id, ACTOR);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', cancelled: 5 });
    expect(cancelled.finishedAt).not.toBeNull();
    const worker = await h.startWorker();
    await expectEventually(async () =>
      expect(await h.queue.queue.getJobCounts('waiting', 'active')).toEqual({ waiting: 0, active: 0 }),
    );
    await worker.close();
    const targets = await h.db.migrationRunTarget.findMany({ where: { runId: run.id } });
    expect(targets.every((t) => t.status === 'CANCELLED' && t.attempts === 0)).toBe(true);
    await expect(h.service.cancelRun(run.id, ACTOR)).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it('publishes events in order with progress', async () => {
    const ids = await h.createTenants('events', 2);
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 1 }, ACTOR);
    const recorder = h.recordEvents(run.id);
    await waitForSubscriber(h.redis, h.config.redisPrefix, run.id);
    const worker = await h.startWorker();
    await waitForRunEnd(h.db, run.id);
    const events = await expectEventually(() => {
      expect(recorder.events.at(-1)?.type).toBe('RUN_FINISHED');
      return recorder.events;
    });
    await worker.close();
    recorder.stop();
    const types = events.map((e) => e.type);
    expect(types).toEqual([
      'RUN_STARTED',
      'TARGET_STARTED',
      'MIGRATION_APPLIED',
      'MIGRATION_APPLIED',
      'MIGRATION_APPLIED',
      'TARGET_SUCCEEDED',
      'TARGET_STARTED',
      'MIGRATION_APPLIED',
      'MIGRATION_APPLIED',
      'MIGRATION_APPLIED',
      'TARGET_SUCCEEDED',
      'RUN_FINISHED',
    ]);
    expect(events[2]).toMatchObject({ version: '0001', targetId: events[1]!.targetId });
    expect(events[5]).toMatchObject({
      runStatus: 'RUNNING',
      progress: { total: 2, succeeded: 1, pending: 1 },
    });
    expect(events[5]!.tenantId).toBeTruthy();
    expect(events[5]!.targetId).toBeTruthy();
    expect(events.at(-1)).toMatchObject({
      runStatus: 'SUCCEEDED',
      progress: { total: 2, succeeded: 2, pending: 0 },
    });
  });
});
