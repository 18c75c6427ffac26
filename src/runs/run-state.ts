/**
 * Applies the run decisions under the run's row lock. Every change of a target's status happens
 * in a transaction that first locks its run row, so counters, the window and the run's end are
 * decided by one transaction at a time, whichever process (API, worker, reconciler) runs it.
 */
import type { ControlPlaneDb, ControlPlaneTx } from '../db/control-plane.js';
import type { MigrationRun } from '../generated/prisma/client.js';
import {
  EMPTY_COUNTS,
  countTarget,
  decideRun,
  progressOf,
  RunStatus,
  TargetStatus,
} from './run-decisions.js';
import type { RunDecision, TargetCounts } from './run-decisions.js';

// Many workers finishing targets of one run queue on its row lock; give them room.
export const RUN_TX_OPTIONS = { maxWait: 10_000, timeout: 60_000 } as const;

/** The outcome of settling a run: the run after the change and what to do after commit. */
export interface SettleResult {
  readonly run: MigrationRun;
  /** Targets just marked QUEUED: enqueue them after commit. */
  readonly admitted: readonly string[];
  /** The run ended in this transaction: publish RUN_FINISHED after commit. */
  readonly ended: boolean;
  readonly decision: RunDecision;
}

interface RunLockRow {
  id: string;
  status: string;
}

/** Locks the run row for the rest of `tx`; returns its status, or null when the run does not exist. */
export async function lockRun(tx: ControlPlaneTx, runId: string): Promise<RunLockRow | null> {
  const rows = await tx.$queryRaw<RunLockRow[]>`
    SELECT id::text AS id, upper(status::text) AS status
    FROM control_plane.migration_runs WHERE id = ${runId}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}

/** Counts the run's targets by status (call with the run locked). */
export async function countTargets(tx: ControlPlaneTx, runId: string): Promise<TargetCounts> {
  const rows = await tx.$queryRaw<{ status: string; canary: boolean; n: number }[]>`
    SELECT upper(status::text) AS status, canary, count(*)::int AS n
    FROM control_plane.migration_run_targets WHERE run_id = ${runId}::uuid
    GROUP BY status, canary`;
  return rows.reduce((counts, row) => countTarget(counts, row.status, row.canary, row.n), EMPTY_COUNTS);
}

/**
 * Locks the run, halts or ends it when its targets say so, admits PENDING targets into the
 * window (marking them QUEUED) and rewrites its counters. Idempotent: settling twice changes
 * nothing the first call did not.
 */
export async function settleRun(tx: ControlPlaneTx, runId: string): Promise<SettleResult | null> {
  const locked = await lockRun(tx, runId);
  if (!locked) return null;
  const run = await tx.migrationRun.findUniqueOrThrow({ where: { id: runId } });
  let counts = await countTargets(tx, runId);
  const decision = decideRun(run, counts);
  let status = run.status as RunStatus;
  const admitted: string[] = [];

  if (decision.halt) {
    await tx.migrationRunTarget.updateMany({
      where: { runId, status: { in: [TargetStatus.PENDING, TargetStatus.QUEUED] } },
      data: { status: TargetStatus.SKIPPED, finishedAt: new Date() },
    });
    status = RunStatus.HALTED;
  } else if (decision.admit > 0) {
    const picked = await tx.$queryRaw<{ id: string }[]>`
      SELECT id::text AS id FROM control_plane.migration_run_targets
      WHERE run_id = ${runId}::uuid AND status = 'pending' AND (${!decision.canaryOnly} OR canary)
      ORDER BY position
      LIMIT ${decision.admit}
      FOR UPDATE SKIP LOCKED`;
    admitted.push(...picked.map((row) => row.id));
    if (admitted.length > 0) {
      await tx.migrationRunTarget.updateMany({
        where: { id: { in: admitted }, status: TargetStatus.PENDING },
        data: { status: TargetStatus.QUEUED },
      });
    }
  }
  if (decision.endStatus) status = decision.endStatus;
  if (decision.halt || admitted.length > 0) counts = await countTargets(tx, runId);

  const ended = decision.endStatus !== null && run.finishedAt === null;
  const updated = await tx.migrationRun.update({
    where: { id: runId },
    data: {
      ...progressOf(counts),
      status,
      ...(ended ? { finishedAt: new Date() } : {}),
    },
  });
  return { run: updated, admitted, ended, decision };
}

/** Runs `fn` in a control-plane transaction sized for run-lock contention. */
export function withRunTransaction<T>(
  db: ControlPlaneDb,
  fn: (tx: ControlPlaneTx) => Promise<T>,
): Promise<T> {
  return db.$transaction(fn, RUN_TX_OPTIONS);
}
