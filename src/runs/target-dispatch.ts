/**
 * How the run machine hands targets to workers. The runs module owns this interface and the
 * queue module implements it (queue/target-queue.ts), so runs never imports the queue.
 * A job carries only ids; the control-plane DB is the record of what remains to do.
 */

/** One target to work on, and its run. */
export interface TargetJob {
  readonly targetId: string;
  readonly runId: string;
}

export interface TargetDispatch {
  /** Hands targets to workers, one job per target (job id = target id); a live job is left alone. */
  enqueue(jobs: readonly TargetJob[]): Promise<void>;
  /**
   * The targets among `targetIds` that no worker will ever pick up: no job, an ended one, or a
   * job whose data is left in no list of the queue.
   */
  findLost(targetIds: readonly string[]): Promise<string[]>;
  /** Hands lost targets to workers again, first removing whatever their old job left behind. */
  requeue(jobs: readonly TargetJob[]): Promise<void>;
}
