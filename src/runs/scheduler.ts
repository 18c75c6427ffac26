/**
 * What follows a committed transition: hand admitted (and woken) targets to workers, announce
 * the end of a run. The window itself (at most `concurrency` targets of a run queued or running, canaries
 * first) is decided in run-decisions.ts and applied in run-machine.ts.
 */
import type { ControlPlanePool } from '../db/control-plane.js';
import type { Logger } from '../logger.js';
import { RunEventType } from '../pubsub/run-events.js';
import type { RunEventBus } from '../pubsub/run-events.js';
import { buildRunEvent } from './run-events.js';
import { queuedTargets, settleRun } from './run-machine.js';
import type { SettleResult } from './run-machine.js';
import type { TargetDispatch } from './target-dispatch.js';

export interface SchedulerDeps {
  readonly pool: ControlPlanePool;
  readonly dispatch: Pick<TargetDispatch, 'enqueue'>;
  readonly events: RunEventBus;
  readonly logger: Logger;
}

/** Creates `fillWindow`, `dispatchRun` and `afterSettle` over the given clients. */
export function createScheduler({ pool, dispatch, events, logger }: SchedulerDeps) {
  /** Settles the run (admitting, halting or ending it), then does what follows. */
  async function fillWindow(runId: string): Promise<SettleResult | null> {
    const result = await settleRun(pool, runId);
    if (result) await afterSettle(result);
    return result;
  }

  /** Hands a committed run's first wave to workers: every target admitted so far. Safe to call twice. */
  async function dispatchRun(runId: string): Promise<void> {
    await fillWindow(runId);
    const queued = await queuedTargets(pool, runId);
    await dispatch.enqueue(queued.map((targetId) => ({ targetId, runId })));
  }

  /** What follows a committed settle: enqueue admitted targets, announce the end of the run. */
  async function afterSettle(result: SettleResult): Promise<void> {
    if (result.woken?.length) {
      // Targets of any run that waited for their server's budget; lost, the reconciler wakes them again.
      await dispatch.enqueue(result.woken);
    }
    if (result.admitted.length > 0) {
      logger.debug('targets admitted', { runId: result.run.id, count: result.admitted.length });
      // If this fails the targets stay QUEUED without jobs; the reconciler enqueues them.
      await dispatch.enqueue(result.admitted.map((targetId) => ({ targetId, runId: result.run.id })));
    }
    if (result.ended) {
      logger.info('run finished', { runId: result.run.id, status: result.run.status });
      events.publish(buildRunEvent(RunEventType.RUN_FINISHED, result.run));
    }
  }

  return { fillWindow, dispatchRun, afterSettle };
}
export type Scheduler = ReturnType<typeof createScheduler>;
