/**
 * The window of a run: at most `concurrency` of its targets queued or running at once, across
 * any number of worker processes. Targets enter in position order; the canary wave first.
 */
import type { ControlPlaneDb } from '../db/control-plane.js';
import type { Logger } from '../logger.js';
import { RunEventType } from '../pubsub/run-events.js';
import type { RunEventBus } from '../pubsub/run-events.js';
import type { TargetQueue } from '../queue/target-queue.js';
import { buildRunEvent } from './run-events.js';
import { settleRun, withRunTransaction } from './run-state.js';
import type { SettleResult } from './run-state.js';

export interface SchedulerDeps {
  readonly db: ControlPlaneDb;
  readonly queue: TargetQueue;
  readonly events: RunEventBus;
  readonly logger: Logger;
}

/** Creates `fillWindow` and `afterSettle` over the given clients. */
export function createScheduler({ db, queue, events, logger }: SchedulerDeps) {
  /**
   * Admits the next PENDING targets of a run into its window (marking them QUEUED in one
   * control-plane transaction), then enqueues them. Also halts or ends the run when due.
   */
  async function fillWindow(runId: string): Promise<SettleResult | null> {
    const result = await withRunTransaction(db, (tx) => settleRun(tx, runId));
    if (result) await afterSettle(result);
    return result;
  }

  /** What follows a committed settle: enqueue admitted targets, announce the end of the run. */
  async function afterSettle(result: SettleResult): Promise<void> {
    if (result.admitted.length > 0) {
      logger.debug('targets admitted', { runId: result.run.id, count: result.admitted.length });
      // If this fails the targets stay QUEUED without jobs; the reconciler enqueues them.
      await queue.enqueue(result.admitted.map((targetId) => ({ targetId, runId: result.run.id })));
    }
    if (result.ended) {
      logger.info('run finished', { runId: result.run.id, status: result.run.status });
      events.publish(buildRunEvent(RunEventType.RUN_FINISHED, result.run));
    }
  }

  return { fillWindow, afterSettle };
}
export type Scheduler = ReturnType<typeof createScheduler>;
