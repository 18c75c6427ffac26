/**
 * A worker process's share of the fleet: a BullMQ Worker running the target processor, and the
 * reconciler at start and every RECONCILE_INTERVAL_MS.
 */
import { UnrecoverableError, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import type { Config } from '../config.js';
import { TargetFailedError, TargetOutcome, createTargetProcessor } from '../runs/target-processor.js';
import type { TargetProcessorDeps } from '../runs/target-processor.js';
import { createReconciler } from '../runs/reconciler.js';
import type { ReconcileReport } from '../runs/reconciler.js';
import { TARGET_JOB_ATTEMPTS, TARGET_QUEUE_NAME } from './target-queue.js';
import type { TargetJobData, TargetQueue } from './target-queue.js';

/** What the processor needs (the caller closes `pool` after the worker), plus the Worker's own. */
export interface TargetWorkerDeps extends Omit<TargetProcessorDeps, 'dispatch' | 'config'> {
  readonly config: Pick<
    Config,
    | 'lockTimeoutMs'
    | 'workerConcurrency'
    | 'reconcileIntervalMs'
    | 'fingerprintAfterTarget'
    | 'targetBatchSize'
    | 'ledgerTable'
  >;
  /** The queue the worker takes jobs from; also where it hands out admitted targets. */
  readonly queue: TargetQueue;
  /** A connection for the Worker's blocking commands (BullMQ duplicates it as needed). */
  readonly connection: RedisClient;
  /**
   * How long a job's lock lasts without renewal: a worker that died is noticed after about this
   * long. Default BullMQ's 30 s; tests shorten it.
   */
  readonly lockDurationMs?: number;
}

export interface TargetWorker {
  /** Stops taking jobs, waits for the running ones, stops the reconciler. */
  close(): Promise<void>;
  /** Runs one reconcile pass now (the timer runs them anyway). */
  reconcile(): Promise<ReconcileReport>;
  readonly worker: Worker<TargetJobData>;
}

/** Starts a worker on the `tenant-migrations` queue with WORKER_CONCURRENCY jobs at once. */
export async function startTargetWorker(deps: TargetWorkerDeps): Promise<TargetWorker> {
  const { config, queue, connection, logger } = deps;
  let closed = false;
  const { processTarget, redispatchIfWoken } = createTargetProcessor({
    ...deps,
    dispatch: queue,
    isStopping: () => closed,
  });
  const { reconcile } = createReconciler({ ...deps, dispatch: queue });
  const log = logger.child({ component: 'target-worker' });

  const worker = new Worker<TargetJobData>(
    TARGET_QUEUE_NAME,
    async (job: Job<TargetJobData>) => {
      try {
        return await processTarget({
          targetId: job.data.targetId,
          runId: job.data.runId,
          // Job ids are target ids (see TargetQueue): the id of the target it was enqueued for.
          jobId: job.id ?? job.data.targetId,
          attempt: job.attemptsMade + 1,
          maxAttempts: job.opts.attempts ?? TARGET_JOB_ATTEMPTS,
        });
      } catch (error) {
        // Recorded FAILED on the target: another attempt cannot help.
        if (error instanceof TargetFailedError) throw new UnrecoverableError(error.message);
        throw error;
      }
    },
    {
      connection,
      prefix: queue.queue.opts.prefix,
      concurrency: config.workerConcurrency,
      ...(deps.lockDurationMs
        ? { lockDuration: deps.lockDurationMs, stalledInterval: deps.lockDurationMs }
        : {}),
      // A job whose worker died twice still belongs to a target the reconciler recovers.
      maxStalledCount: 2,
    },
  );
  worker.on('error', (error) => log.error('worker error', { error }));
  // A deferred job has left the queue now: its target may have been woken meanwhile.
  worker.on('completed', (job, result) => {
    if (result !== TargetOutcome.DEFERRED) return;
    redispatchIfWoken({ targetId: job.data.targetId, runId: job.data.runId }).catch((error: unknown) =>
      log.warn('could not re-enqueue a woken target; the reconciler will', { jobId: job.id, error }),
    );
  });
  worker.on('failed', (job, error) => {
    if (!(error instanceof UnrecoverableError)) log.warn('target job failed', { jobId: job?.id, error });
  });

  let reconciling: Promise<unknown> = Promise.resolve();
  const reconcileNow = (): Promise<ReconcileReport> => {
    const pass = reconciling.then(() => reconcile());
    reconciling = pass.catch((error: unknown) => log.error('reconcile failed', { error }));
    return pass;
  };
  await worker.waitUntilReady();
  await reconcileNow().catch(() => undefined);
  const timer = setInterval(() => {
    if (!closed) void reconcileNow().catch(() => undefined);
  }, config.reconcileIntervalMs);
  timer.unref();

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    await worker.close();
    await reconciling;
  }

  return { close, reconcile: reconcileNow, worker };
}
