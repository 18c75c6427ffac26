/** Reads what tests check after a run: the run, its targets, tenant ledgers and migration logs. */
import { expect } from 'vitest';
import { progressOfRun } from '../../../src/runs/run-decisions.js';
import type pg from 'pg';
import { countSubscribers, type RedisClient } from '../../../src/redis/connections.js';
import type { ControlPlaneDb } from '../../../src/db/control-plane.js';
import type { MigrationRun } from '../../../src/generated/prisma/client.js';
import { expectEventually } from '../../helpers/eventually.js';

/** Waits until the run has finished (finished_at set) and returns it. */
export async function waitForRunEnd(
  db: ControlPlaneDb,
  runId: string,
  timeoutMs = 45_000,
): Promise<MigrationRun> {
  return expectEventually(
    async () => {
      const run = await db.migrationRun.findUniqueOrThrow({ where: { id: runId } });
      expect(run.finishedAt, `run ${runId} is ${run.status}`).not.toBeNull();
      return run;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/** Waits for the run `start` creates to end; the run, and its targets by tenant name. */
export async function runToEnd(db: ControlPlaneDb, start: Promise<{ id: string }>) {
  const { id } = await start;
  const ended = await waitForRunEnd(db, id);
  const targets = await db.migrationRunTarget.findMany({ where: { runId: id }, include: { tenant: true } });
  return { run: ended, byName: new Map(targets.map((t) => [t.tenant!.name, t])) };
}

/** The tenant databases of the tenants `ids`, by tenant name. */
export async function databasesByName(db: ControlPlaneDb, ids: readonly string[]) {
  const rows = await db.tenantDatabase.findMany({
    where: { tenantId: { in: [...ids] } },
    include: { tenant: true },
  });
  return new Map(rows.map((row) => [row.tenant.name, row]));
}

/** The versions in a tenant schema's ledger, ascending ([] when it has none). */
export async function ledgerVersions(pool: pg.Pool, schema: string): Promise<string[]> {
  const exists = await pool.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [
    `${schema}.control_plane_ledger`,
  ]);
  if (!exists.rows[0]?.e) return [];
  const result = await pool.query<{ version: string }>(
    `SELECT version FROM ${schema}.control_plane_ledger ORDER BY version`,
  );
  return result.rows.map((row) => row.version);
}

/** How many times each fixture migration ran on a tenant schema (its migration_log). */
export async function migrationLogCounts(pool: pg.Pool, schema: string): Promise<Record<string, number>> {
  const result = await pool.query<{ version: string; n: number }>(
    `SELECT version, count(*)::int AS n FROM ${schema}.migration_log GROUP BY version ORDER BY version`,
  );
  return Object.fromEntries(result.rows.map((row) => [row.version, row.n]));
}

/** Waits until somebody listens on the run's event channel, so no event is missed. */
export async function waitForSubscriber(redis: RedisClient, prefix: string, runId: string): Promise<void> {
  await expectEventually(async () => {
    expect(await countSubscribers(redis, `${prefix}:run-events:${runId}`)).toBeGreaterThan(0);
  });
}

/** Expects the run's stored counters to equal a recount of its targets (pending includes queued). */
export async function expectCountersMatchTargets(db: ControlPlaneDb, runId: string): Promise<void> {
  const run = await db.migrationRun.findUniqueOrThrow({ where: { id: runId } });
  const groups = await db.migrationRunTarget.groupBy({ by: ['status'], where: { runId }, _count: true });
  const n = (...statuses: string[]) =>
    groups.filter((g) => statuses.includes(g.status)).reduce((sum, g) => sum + g._count, 0);
  expect(progressOfRun(run)).toEqual({
    total: n('PENDING', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED'),
    pending: n('PENDING', 'QUEUED'),
    running: n('RUNNING'),
    succeeded: n('SUCCEEDED'),
    failed: n('FAILED'),
    skipped: n('SKIPPED'),
    cancelled: n('CANCELLED'),
  });
}

/** The job a target's own delivery is (its id as the job id), for calling the run machine directly. */
export function ownJob(target: { readonly id: string; readonly runId: string }) {
  return { targetId: target.id, runId: target.runId, jobId: target.id };
}
