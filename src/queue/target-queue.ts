/**
 * The BullMQ queue that carries run targets to workers. Redis is transport only: the
 * control-plane DB says what is pending; a job is just "go look at target X".
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import type { TargetDispatch, TargetJob } from '../runs/target-dispatch.js';

/** The one queue every kind of target travels on. */
export const TARGET_QUEUE_NAME = 'tenant-migrations';
/** One job name for every kind: the processor reads the kind from the run, the record. */
export const TARGET_JOB_NAME = 'migrate-tenant';
// Transient failures (lock timeouts, lost connections) get this many tries in all by default
// (TARGET_JOB_ATTEMPTS): with the backoff below, a target waits out about two minutes of a tenant
// server being unreachable (a restart, a failover) before it fails; retryMigrationRun takes it up
// after longer outages.
export const TARGET_JOB_ATTEMPTS = 8;
// First retry after 1s, then 2s, 4s, ... 64s: long enough for a lock holder to finish.
const BACKOFF_DELAY_MS = 1000;

/** What a job carries: only ids; everything else is read from the control-plane DB. */
export type TargetJobData = TargetJob;

// A job in one of these states will still be processed (or is being processed right now).
const LIVE_JOB_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

export interface TargetQueueDeps {
  readonly connection: RedisClient;
  /** BullMQ key prefix, e.g. `{cp}`. */
  readonly prefix: string;
  /** Tries per target job, transient failures included; default TARGET_JOB_ATTEMPTS. */
  readonly attempts?: number;
}

/** The run machine's TargetDispatch over BullMQ, and the queue itself for workers and tests. */
export interface TargetQueue extends TargetDispatch {
  readonly queue: Queue<TargetJobData>;
  close(): Promise<void>;
}

/** Creates the `tenant-migrations` queue under `prefix`. */
export function createTargetQueue({
  connection,
  prefix,
  attempts = TARGET_JOB_ATTEMPTS,
}: TargetQueueDeps): TargetQueue {
  const queue = new Queue<TargetJobData>(TARGET_QUEUE_NAME, { connection, prefix });

  async function enqueue(targets: readonly TargetJobData[]): Promise<void> {
    if (targets.length === 0) return;
    // Ended jobs are removed on completion and failure (below), so a re-admitted target's id is
    // free again; a live job with the same id makes the add a no-op, which is what we want.
    await queue.addBulk(
      targets.map((data) => ({
        name: TARGET_JOB_NAME,
        data: { targetId: data.targetId, runId: data.runId },
        opts: {
          jobId: data.targetId,
          attempts,
          backoff: { type: 'exponential', delay: BACKOFF_DELAY_MS },
          // The target row is the record; an ended job only blocks re-adding the same id.
          removeOnComplete: true,
          removeOnFail: true,
        },
      })),
    );
  }

  async function findLost(targetIds: readonly string[]): Promise<string[]> {
    const states = await Promise.all(targetIds.map((id) => queue.getJobState(id)));
    // 'unknown' also covers a job hash left in no list (a worker finishing a job as Redis lost
    // its keys: "Missing lock for job"): adding the same id again would be a no-op forever.
    return targetIds.filter((_, i) => !LIVE_JOB_STATES.has(states[i]!));
  }

  async function requeue(jobs: readonly TargetJobData[]): Promise<void> {
    // Whatever the old job left behind goes first, so the add below is not a no-op.
    await Promise.all(jobs.map((job) => queue.remove(job.targetId)));
    await enqueue(jobs);
  }

  async function close(): Promise<void> {
    await queue.close();
  }

  return { queue, enqueue, findLost, requeue, close };
}

/** The BullMQ prefix of a deployment's REDIS_PREFIX: braces keep a queue's keys in one cluster slot. */
export function queuePrefixOf(redisPrefix: string): string {
  return redisPrefix.startsWith('{') ? redisPrefix : `{${redisPrefix}}`;
}
