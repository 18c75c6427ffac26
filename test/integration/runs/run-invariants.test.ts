import { randomUUID } from 'node:crypto';
/**
 * The invariants the control-plane database holds for runs, whatever the timing: one active
 * target per tenant database, no work for a deleted tenant, and finishes guarded by the state
 * they expect.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlanePool } from '../../../src/db/control-plane.js';
import type { ControlPlanePool } from '../../../src/db/control-plane.js';
import { ConflictError } from '../../../src/errors.js';
import { claimTarget, finishTarget } from '../../../src/runs/run-machine.js';
import { ownJob } from './run-assertions.js';
import { ACTOR, useRunHarness } from './run-harness.js';
import { expectCountersMatchTargets, ledgerVersions, waitForRunEnd } from './run-assertions.js';

describe('run invariants held by the database', () => {
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

  it('refuses a rollback of a tenant a migrate run holds, naming the tenant and the run; creates nothing', async () => {
    const ids = await h.createTenants('busy', 2);
    const holder = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 1 }, ACTOR);
    const runsBefore = await h.db.migrationRun.count();
    const targetsBefore = await h.db.migrationRunTarget.count();

    const refused = h.service.startRollback({ targetVersion: '0', tenants: { ids: [ids[1]!] } }, ACTOR);
    await expect(refused).rejects.toBeInstanceOf(ConflictError);
    await expect(refused).rejects.toThrow(/busy_001/);
    await expect(refused).rejects.toThrow(holder.id);
    expect(await h.db.migrationRun.count()).toBe(runsBefore);
    expect(await h.db.migrationRunTarget.count()).toBe(targetsBefore);

    // A dry run changes nothing, so it may look at a busy tenant.
    const dry = await h.service.startMigrationRun({ tenants: { ids }, dryRun: true }, ACTOR);
    expect(dry.total).toBe(2);
    await h.service.cancelRun(dry.id, ACTOR);
    await h.service.cancelRun(holder.id, ACTOR);
  });

  it('accepts exactly one of two runs started at once on the same tenants', async () => {
    const ids = await h.createTenants('race', 3);
    const results = await Promise.allSettled([
      h.service.startRollback({ targetVersion: '0', tenants: { ids } }, ACTOR),
      h.service.startMigrationRun({ tenants: { ids } }, ACTOR),
    ]);
    const accepted = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(accepted).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    const runs = await h.db.migrationRunTarget.groupBy({
      by: ['runId'],
      where: { tenantId: { in: ids } },
      _count: true,
    });
    expect(runs).toHaveLength(1);
    await h.service.cancelRun((accepted[0] as PromiseFulfilledResult<{ id: string }>).value.id, ACTOR);
  });

  it('names at most 10 busy tenants and says how many more', async () => {
    const ids = await h.createTenants('many', 12);
    const holder = await h.service.startMigrationRun({ tenants: { ids } }, ACTOR);
    const error = await h.service.startMigrationRun({ tenants: { ids } }, ACTOR).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    const message = (error as Error).message;
    expect(message.match(/many_\d{3}/g)).toHaveLength(10);
    expect(message).toContain('and 2 more');
    expect(message).toContain(holder.id);
    await h.service.cancelRun(holder.id, ACTOR);
  });

  it('refuses to retry a run whose tenant another run now holds, and changes nothing', async () => {
    const ids = await h.createTenants('retry', 1);
    const first = await h.service.startMigrationRun({ tenants: { ids } }, ACTOR);
    await h.service.cancelRun(first.id, ACTOR);
    const second = await h.service.startMigrationRun({ tenants: { ids } }, ACTOR);
    await expect(h.service.retryRun(first.id, ACTOR)).rejects.toBeInstanceOf(ConflictError);
    expect(await h.db.migrationRun.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({
      status: 'CANCELLED',
      cancelled: 1,
    });
    expect((await targetsOf(first.id)).map((t) => t.status)).toEqual(['CANCELLED']);
    await h.service.cancelRun(second.id, ACTOR);
  });

  it('never claims a target of a deleted tenant: it ends SKIPPED with the reason', async () => {
    const ids = await h.createTenants('gone', 2);
    const run = await h.service.startMigrationRun({ tenants: { ids } }, ACTOR);
    // What deleteTenant does first, under the tenant's lock, before it drops anything.
    await h.db.tenant.update({ where: { tenantId: ids[0]! }, data: { deletedAt: new Date() } });
    const worker = await h.startWorker();
    const ended = await waitForRunEnd(h.db, run.id);
    await worker.close();
    expect(ended).toMatchObject({ status: 'SUCCEEDED', succeeded: 1, skipped: 1 });
    const [gone, kept] = await targetsOf(run.id);
    expect(gone).toMatchObject({ status: 'SKIPPED', attempts: 0 });
    expect(gone!.error).toMatch(/deleted/);
    expect(kept!.status).toBe('SUCCEEDED');
    expect(await ledgerVersions(h.database.pool, 'tenant_gone_000')).toEqual([]);
    await expectCountersMatchTargets(h.db, run.id);
  });

  it('does not set a tenant deleted during its provisioning ACTIVE, nor its database', async () => {
    const tenantDatabaseId = randomUUID();
    const tenant = await h.db.tenant.create({
      data: {
        name: 'prov_deleted',
        status: 'PENDING',
        databases: {
          create: {
            id: tenantDatabaseId,
            connectionStringEncrypted: h.secretBox.sealConnectionString(tenantDatabaseId, h.database.url),
            databaseName: h.database.name,
            host: '127.0.0.1',
            port: 5432,
            status: 'INACTIVE',
            isolation: 'SCHEMA',
            schemaName: 'tenant_prov_deleted',
          },
        },
      },
      include: { databases: true },
    });
    const run = await h.db.$transaction((tx) =>
      h.service.createProvisionRun(
        tx,
        { tenantId: tenant.tenantId, tenantDatabaseId: tenant.databases[0]!.id },
        ACTOR,
      ),
    );
    await h.service.dispatch(run.id);
    const [target] = await targetsOf(run.id);
    expect(await claimTarget(pool, ownJob(target!))).toHaveProperty('target');
    await h.db.tenant.update({ where: { tenantId: tenant.tenantId }, data: { deletedAt: new Date() } });
    await h.db.tenantDatabase.update({
      where: { id: tenant.databases[0]!.id },
      data: { status: 'INACTIVE' },
    });

    await finishTarget(pool, ownJob(target!), target!.id, {
      status: 'SUCCEEDED',
      fromVersion: null,
      toVersion: '0003',
      appliedVersions: ['0001', '0002', '0003'],
      plannedSql: null,
    });
    expect(await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenant.tenantId } })).toMatchObject({
      status: 'PENDING',
    });
    expect(
      await h.db.tenantDatabase.findUniqueOrThrow({ where: { id: tenant.databases[0]!.id } }),
    ).toMatchObject({ status: 'INACTIVE', schemaVersion: null });
  });

  it('writes the cached version and ACTIVE only over the MIGRATING its claim set', async () => {
    const ids = await h.createTenants('guard', 1);
    const run = await h.service.startMigrationRun({ tenants: { ids } }, ACTOR);
    const [target] = await targetsOf(run.id);
    expect(await claimTarget(pool, ownJob(target!))).toHaveProperty('target');
    // Something else (an operator, a deletion) changed the database while the target ran.
    await h.db.tenantDatabase.update({
      where: { id: target!.tenantDatabaseId! },
      data: { status: 'INACTIVE', schemaVersion: '0001' },
    });
    await finishTarget(pool, ownJob(target!), target!.id, {
      status: 'FAILED',
      appliedVersions: [],
      reached: '0002',
      error: 'boom',
      errorCode: 'XX000',
    });
    expect(
      await h.db.tenantDatabase.findUniqueOrThrow({ where: { id: target!.tenantDatabaseId! } }),
    ).toMatchObject({ status: 'INACTIVE', schemaVersion: '0001' });
  });

  it('ignores a finish of a target that is not RUNNING: every finish expects its claim', async () => {
    const ids = await h.createTenants('unclaimed', 1);
    const run = await h.service.startMigrationRun({ tenants: { ids } }, ACTOR);
    const [target] = await targetsOf(run.id);
    expect(target!.status).toBe('QUEUED');
    const settled = await finishTarget(pool, ownJob(target!), target!.id, {
      status: 'SUCCEEDED',
      fromVersion: null,
      toVersion: '0003',
      appliedVersions: ['0001', '0002', '0003'],
      plannedSql: null,
    });
    expect(settled).toBeNull();
    expect((await targetsOf(run.id))[0]!.status).toBe('QUEUED');
    expect(
      await h.db.tenantDatabase.findUniqueOrThrow({ where: { id: target!.tenantDatabaseId! } }),
    ).toMatchObject({ status: 'ACTIVE', schemaVersion: null });
    await h.service.cancelRun(run.id, ACTOR);
  });
});
