/**
 * The pure decisions of the run machine: how many targets may enter the window, whether the
 * canary wave holds the rest back, when failures halt the run, and how it ends. The SQL in
 * run-machine.ts applies them under the run's row lock.
 *
 * Semantics:
 * - Window: at most `concurrency` targets of a run are QUEUED or RUNNING; PENDING targets enter
 *   in position order (tenant name order at creation).
 * - Canary: the first `canarySize` targets are canaries; while any canary is unfinished only
 *   canaries enter. A failed canary HALTS the run: no non-canary target ever starts, and every
 *   target still PENDING or QUEUED (canary or not) becomes SKIPPED.
 * - maxFailures: once `failed >= maxFailures` while work is waiting, the run becomes HALTED and
 *   every PENDING or QUEUED target SKIPPED. With nothing waiting the run simply ends FAILED.
 * - HALTED and CANCELLED are set at once; targets already RUNNING finish, and the run gets
 *   `finished_at` (and RUN_FINISHED is published) when the last of them ends.
 * - A run with nothing left ends SUCCEEDED without failures, FAILED otherwise.
 * - retryRun puts FAILED, CANCELLED and SKIPPED targets back to PENDING (canaries first again).
 * - Stored counters use the API's meaning: `pending` includes the internal QUEUED.
 * - The hot path decides from the run's stored counters (kept by exact deltas under the run's row
 *   lock) plus two small counts: QUEUED targets (at most `concurrency`) and, when the run has a
 *   canary wave, its canary targets. settleRun recounts everything and rewrites the counters, so
 *   the rare paths (dispatch, cancel, retry, the reconciler) repair any drift.
 */
import type { RunProgress } from '../pubsub/run-events.js';

/** Run statuses, as the Prisma client spells them. */
export const RunStatus = {
  QUEUED: 'QUEUED',
  RUNNING: 'RUNNING',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
  HALTED: 'HALTED',
  CANCELLED: 'CANCELLED',
} as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

/** Target statuses, including the internal QUEUED (handed to the queue, not yet picked up). */
export const TargetStatus = {
  PENDING: 'PENDING',
  QUEUED: 'QUEUED',
  RUNNING: 'RUNNING',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
  SKIPPED: 'SKIPPED',
  CANCELLED: 'CANCELLED',
} as const;
export type TargetStatus = (typeof TargetStatus)[keyof typeof TargetStatus];

/** Whether a run still schedules targets. */
export function isRunActive(status: string): boolean {
  return status === RunStatus.QUEUED || status === RunStatus.RUNNING;
}

/** Whether a target has reached an end state. */
export function isTargetEnded(status: string): boolean {
  return (
    status === TargetStatus.SUCCEEDED ||
    status === TargetStatus.FAILED ||
    status === TargetStatus.SKIPPED ||
    status === TargetStatus.CANCELLED
  );
}

/** How many targets of a run are in each status, and how the canary wave stands. */
export interface TargetCounts {
  readonly pending: number;
  readonly queued: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly cancelled: number;
  /** Canary targets PENDING, QUEUED or RUNNING. */
  readonly canaryUnfinished: number;
  /** Canary targets FAILED. */
  readonly canaryFailed: number;
}

export const EMPTY_COUNTS: TargetCounts = {
  pending: 0,
  queued: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  skipped: 0,
  cancelled: 0,
  canaryUnfinished: 0,
  canaryFailed: 0,
};

/** The scheduling settings of a run. */
export interface RunLimits {
  readonly status: string;
  readonly concurrency: number;
  readonly maxFailures: number | null;
  readonly canarySize: number | null;
}

/** What to do with a run now. */
export interface RunDecision {
  /** Stop scheduling: the run becomes HALTED and every PENDING or QUEUED target SKIPPED. */
  readonly halt: boolean;
  /** How many PENDING targets may enter the window now. */
  readonly admit: number;
  /** While the canary wave is unfinished only canary targets may enter. */
  readonly canaryOnly: boolean;
  /** The run's end status when nothing is left to do, else null. */
  readonly endStatus: RunStatus | null;
}

/**
 * Decides a run's next step from its target counts. A failed canary or `maxFailures` failures
 * halt the run while there is still work waiting; a run whose last target ended with failures
 * and nothing waiting simply ends FAILED.
 */
export function decideRun(run: RunLimits, counts: TargetCounts): RunDecision {
  const waiting = counts.pending + counts.queued;
  const active = counts.queued + counts.running;
  if (!isRunActive(run.status)) {
    // HALTED or CANCELLED keep their status; they end once the last running target ends.
    const terminalNow = run.status === RunStatus.HALTED || run.status === RunStatus.CANCELLED;
    return {
      halt: false,
      admit: 0,
      canaryOnly: false,
      endStatus: terminalNow && active === 0 ? (run.status as RunStatus) : null,
    };
  }
  const tooManyFailures = run.maxFailures !== null && counts.failed >= run.maxFailures;
  if ((tooManyFailures || counts.canaryFailed > 0) && waiting > 0) {
    return {
      halt: true,
      admit: 0,
      canaryOnly: false,
      endStatus: counts.running === 0 ? RunStatus.HALTED : null,
    };
  }
  if (waiting + counts.running === 0) {
    return {
      halt: false,
      admit: 0,
      canaryOnly: false,
      endStatus: counts.failed > 0 ? RunStatus.FAILED : RunStatus.SUCCEEDED,
    };
  }
  return {
    halt: false,
    admit: windowSlots(run.concurrency, counts),
    canaryOnly: counts.canaryUnfinished > 0,
    endStatus: null,
  };
}

/** Free places in the window: `concurrency` minus the targets already queued or running. */
export function windowSlots(
  concurrency: number,
  counts: Pick<TargetCounts, 'queued' | 'running' | 'pending'>,
): number {
  return Math.max(0, Math.min(counts.pending, concurrency - counts.queued - counts.running));
}

/** The run's stored counters (and API progress): queued targets count as pending. */
export function progressOf(counts: TargetCounts): RunProgress {
  const total =
    counts.pending +
    counts.queued +
    counts.running +
    counts.succeeded +
    counts.failed +
    counts.skipped +
    counts.cancelled;
  return {
    total,
    pending: counts.pending + counts.queued,
    running: counts.running,
    succeeded: counts.succeeded,
    failed: counts.failed,
    skipped: counts.skipped,
    cancelled: counts.cancelled,
  };
}

/** The progress fields of a stored run row. */
export function progressOfRun(run: RunProgress): RunProgress {
  return {
    total: run.total,
    pending: run.pending,
    running: run.running,
    succeeded: run.succeeded,
    failed: run.failed,
    skipped: run.skipped,
    cancelled: run.cancelled,
  };
}

/** Adds one target of `status` (and canary flag) to `counts`. */
export function countTarget(counts: TargetCounts, status: string, canary: boolean, n = 1): TargetCounts {
  const key = status.toLowerCase() as Lowercase<TargetStatus>;
  const next = { ...counts, [key]: counts[key] + n };
  if (canary && !isTargetEnded(status)) next.canaryUnfinished += n;
  if (canary && status === TargetStatus.FAILED) next.canaryFailed += n;
  return next;
}

/** The small counts the hot path reads next to the run's stored counters. */
export interface WindowCounts {
  /** Targets QUEUED (stored counters fold them into `pending`). */
  readonly queued: number;
  readonly canaryUnfinished: number;
  readonly canaryFailed: number;
}

/** Target counts from a run's stored counters (where `pending` includes QUEUED) and the small counts. */
export function countsOfRun(run: RunProgress, small: WindowCounts): TargetCounts {
  return {
    pending: run.pending - small.queued,
    queued: small.queued,
    running: run.running,
    succeeded: run.succeeded,
    failed: run.failed,
    skipped: run.skipped,
    cancelled: run.cancelled,
    canaryUnfinished: small.canaryUnfinished,
    canaryFailed: small.canaryFailed,
  };
}

/** `counts` after one target (canary or not) moved from status `from` to status `to`. */
export function moveTarget(counts: TargetCounts, from: string, to: string, canary: boolean): TargetCounts {
  if (from === to) return counts;
  return countTarget(countTarget(counts, from, canary, -1), to, canary, 1);
}

/** What one target moving from `from` to `to` changes in the stored counters (pending includes QUEUED). */
export function progressDelta(from: string, to: string): RunProgress {
  const before = progressOf(countTarget(EMPTY_COUNTS, from, false));
  const after = progressOf(countTarget(EMPTY_COUNTS, to, false));
  return {
    total: 0,
    pending: after.pending - before.pending,
    running: after.running - before.running,
    succeeded: after.succeeded - before.succeeded,
    failed: after.failed - before.failed,
    skipped: after.skipped - before.skipped,
    cancelled: after.cancelled - before.cancelled,
  };
}

/** What decides the fate of a target the claim refused (read under its run's lock). */
export interface UnclaimedState {
  readonly targetStatus: string;
  readonly runStatus: string;
  readonly tenantDeleted: boolean;
  /** The tenant's name, for the reason. */
  readonly tenant: string;
}

/** How a target that never ran ends, with the reason recorded on it. */
export interface UnclaimedEnd {
  readonly status: typeof TargetStatus.SKIPPED | typeof TargetStatus.CANCELLED;
  readonly reason: string | null;
}

/**
 * Whether a target the claim refused ends now, and how: a deleted tenant's target is SKIPPED
 * with the reason (no work is ever done for a deleted tenant); one whose run stopped scheduling
 * before it started is CANCELLED (cancelled run) or SKIPPED (halted run). Null when nothing is
 * to change: the target has ended, or it is PENDING (a stray job; the window admits it later).
 */
export function decideUnclaimed(state: UnclaimedState): UnclaimedEnd | null {
  if (isTargetEnded(state.targetStatus)) return null;
  if (state.tenantDeleted) {
    return { status: TargetStatus.SKIPPED, reason: `Tenant "${state.tenant}" was deleted; nothing was run` };
  }
  if (!isRunActive(state.runStatus) && state.targetStatus !== TargetStatus.RUNNING) {
    return {
      status: state.runStatus === RunStatus.CANCELLED ? TargetStatus.CANCELLED : TargetStatus.SKIPPED,
      reason: null,
    };
  }
  return null;
}

/** A tenant another unfinished run holds, and that run. */
export interface BusyTenant {
  readonly tenant: string;
  readonly runId: string;
  /** How many of the asked-for tenants are held in all. */
  readonly total: number;
}

// How many busy tenants a refusal names; the rest are counted.
const BUSY_TENANTS_NAMED = 10;

/** The message refusing a run over tenants other runs hold: up to 10 names with their runs. */
export function describeBusyTenants(holders: readonly BusyTenant[], total: number): string {
  if (holders.length === 0) {
    return 'Another run held some of the selected tenants a moment ago; nothing was created, try again';
  }
  const named = holders.slice(0, BUSY_TENANTS_NAMED).map((h) => `${h.tenant} (run ${h.runId})`);
  const more = total - named.length;
  return (
    `${total} selected tenant(s) are held by another unfinished run: ${named.join(', ')}` +
    `${more > 0 ? `, and ${more} more` : ''}. Wait for that run to end or cancel it; nothing was created`
  );
}
