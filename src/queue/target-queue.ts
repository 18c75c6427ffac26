/**
 * The BullMQ queue that carries run targets to workers. Redis is transport only: the
 * control-plane DB says what is pending; a job is just "go look at target X".
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** The one queue every kind of target travels on. */
export const TARGET_QUEUE_NAME = 'tenant-migrations';
/** One job name for every kind: the processor reads the kind from the run, the record. */
export const TARGET_JOB_NAME = 'migrate-tenant';
// Transient failures (lock timeouts, lost connections) get this many tries in all.
export const TARGET_JOB_ATTEMPTS = 5;
// First retry after 1s, then 2s, 4s, 8s: long enough for a lock holder to finish.
const BACKOFF_DELAY_MS = 1000;

/** What a job carries: only ids; everything else is read from the control-plane DB. */
export interface TargetJobData {
  readonly targetId: string;
  readonly runId: string;
}

export interface TargetQueueDeps {
  readonly connection: Redis;
  /** BullMQ key prefix, e.g. `{cp}`. */
  readonly prefix: string;
}

export interface TargetQueue {
  readonly queue: Queue<TargetJobData>;
  /** Adds one job per target, job id = target id; a target that already has a live job is left alone. */
  enqueue(targets: readonly TargetJobData[]): Promise<void>;
  close(): Promise<void>;
}

/** Creates the `tenant-migrations` queue under `prefix`. */
export function createTargetQueue({ connection, prefix }: TargetQueueDeps): TargetQueue {
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
          attempts: TARGET_JOB_ATTEMPTS,
          backoff: { type: 'exponential', delay: BACKOFF_DELAY_MS },
          // The target row is the record; an ended job only blocks re-adding the same id.
          removeOnComplete: true,
          removeOnFail: true,
        },
      })),
    );
  }

  async function close(): Promise<void> {
    await queue.close();
  }

  return { queue, enqueue, close };
}

/** The BullMQ prefix of a deployment's REDIS_PREFIX: braces keep a queue's keys in one cluster slot. */
export function queuePrefixOf(redisPrefix: string): string {
  return redisPrefix.startsWith('{') ? redisPrefix : `{${redisPrefix}}`;
}
