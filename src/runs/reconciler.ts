/**
 * Heals what Redis lost: targets that Postgres says are QUEUED or RUNNING but that no worker
 * will pick up (Redis flushed, a job removed after its worker died, a job's data left in no list
 * of the queue) are handed out again, and every unfinished run, whatever its status, is settled:
 * its window refilled, or ended when nothing is left; targets waiting for a server's budget
 * where it has room again are woken. Safe to run from many workers at once:
 * each change is conditional and job ids are target ids.
 */
import type { ControlPlanePool } from '../db/control-plane.js';
import type { Logger } from '../logger.js';
import type { RunEventBus } from '../pubsub/run-events.js';
import { inFlightJobs, stillInFlight, unfinishedRuns, wakeDeferredTargets } from './run-machine.js';
import { createScheduler } from './scheduler.js';
import type { TargetDispatch } from './target-dispatch.js';

export interface ReconcilerDeps {
  readonly pool: ControlPlanePool;
  readonly dispatch: TargetDispatch;
  readonly events: RunEventBus;
  readonly logger: Logger;
}

/** What one reconcile pass did. */
export interface ReconcileReport {
  readonly runs: number;
  readonly requeued: number;
}

/** Creates `reconcile`, one pass over every unfinished run. */
export function createReconciler(deps: ReconcilerDeps) {
  const { pool, dispatch, logger } = deps;
  const scheduler = createScheduler(deps);

  /** Hands out the lost targets of every unfinished run again, then settles each run. */
  async function reconcile(): Promise<ReconcileReport> {
    const runs = await unfinishedRuns(pool);
    let requeued = 0;
    for (const runId of runs) {
      requeued += await requeueLostTargets(runId);
      await scheduler.fillWindow(runId);
    }
    if (requeued > 0) logger.warn('reconciler re-enqueued lost targets', { requeued, runs: runs.length });
    // Targets waiting for a server's budget where it has room (it grew, or a wake was lost).
    const woken = runs.length === 0 ? [] : await wakeDeferredTargets(pool);
    if (woken.length > 0) {
      logger.info('reconciler woke targets waiting for their server', { woken: woken.length });
      await dispatch.enqueue(woken);
    }
    return { runs: runs.length, requeued };
  }

  async function requeueLostTargets(runId: string): Promise<number> {
    // A job's id is the id of the target it was enqueued for; a job that took further targets
    // holds them under that id, and its new delivery claims the one it holds (see claimTarget).
    const inFlight = await inFlightJobs(pool, runId);
    if (inFlight.length === 0) return 0;
    const lost = await dispatch.findLost(inFlight);
    if (lost.length === 0) return 0;
    // Only jobs still holding a target in flight after the check: one that ended meanwhile must not run again.
    const still = await stillInFlight(pool, runId, lost);
    await dispatch.requeue(still.map((targetId) => ({ targetId, runId })));
    return still.length;
  }

  return { reconcile };
}
export type Reconciler = ReturnType<typeof createReconciler>;
