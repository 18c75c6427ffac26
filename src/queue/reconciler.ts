/**
 * Heals what Redis lost: targets that Postgres says are QUEUED or RUNNING but whose job is gone
 * (Redis flushed, job removed after a worker died) are re-enqueued, and every active run's
 * window is refilled. Safe to run from many workers at once: each change is conditional and
 * job ids are target ids.
 */
import type { ControlPlaneDb } from '../db/control-plane.js';
import type { Logger } from '../logger.js';
import type { RunEventBus } from '../pubsub/run-events.js';
import { lockRun, settleRun, withRunTransaction } from '../runs/run-state.js';
import { createScheduler } from '../runs/scheduler.js';
import type { TargetQueue } from './target-queue.js';

export interface ReconcilerDeps {
  readonly db: ControlPlaneDb;
  readonly queue: TargetQueue;
  readonly events: RunEventBus;
  readonly logger: Logger;
}

/** What one reconcile pass did. */
export interface ReconcileReport {
  readonly runs: number;
  readonly requeued: number;
}

// A job in one of these states will still be processed (or is being processed right now).
const LIVE_JOB_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

/** Creates `reconcile`, one pass over every active run. */
export function createReconciler(deps: ReconcilerDeps) {
  const { db, queue, logger } = deps;
  const scheduler = createScheduler(deps);

  /** Re-enqueues lost targets of every QUEUED or RUNNING run, then refills each run's window. */
  async function reconcile(): Promise<ReconcileReport> {
    const runs = await db.migrationRun.findMany({
      where: { status: { in: ['QUEUED', 'RUNNING'] } },
      select: { id: true },
    });
    let requeued = 0;
    for (const { id: runId } of runs) {
      requeued += await requeueLostTargets(runId);
      await scheduler.fillWindow(runId);
    }
    if (requeued > 0) logger.warn('reconciler re-enqueued lost targets', { requeued, runs: runs.length });
    return { runs: runs.length, requeued };
  }

  async function requeueLostTargets(runId: string): Promise<number> {
    const inFlight = await db.migrationRunTarget.findMany({
      where: { runId, status: { in: ['QUEUED', 'RUNNING'] } },
      select: { id: true },
    });
    const lost: string[] = [];
    for (const { id } of inFlight) {
      const state = await queue.queue.getJobState(id);
      if (!LIVE_JOB_STATES.has(state)) lost.push(id);
    }
    if (lost.length === 0) return 0;
    // Only targets still in flight after the check: one that ended meanwhile must not run again.
    const requeue = await withRunTransaction(db, async (tx) => {
      await lockRun(tx, runId);
      const still = await tx.migrationRunTarget.findMany({
        where: { id: { in: lost }, status: { in: ['QUEUED', 'RUNNING'] } },
        select: { id: true },
      });
      const ids = still.map((t) => t.id);
      if (ids.length > 0) {
        await tx.migrationRunTarget.updateMany({ where: { id: { in: ids } }, data: { status: 'QUEUED' } });
        await settleRun(tx, runId);
      }
      return ids;
    });
    await queue.enqueue(requeue.map((targetId) => ({ targetId, runId })));
    return requeue.length;
  }

  return { reconcile };
}
export type Reconciler = ReturnType<typeof createReconciler>;
