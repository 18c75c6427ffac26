/**
 * The run state machine: every transition of a run and its targets (admit, claim, finish, halt,
 * cancel, retry, reconcile), each a short sequence of the statements in sql/run-statements.ts,
 * sent over a plain pg pool to the control-plane DB (db/prepared-statements.ts). The decisions
 * between the statements are the pure functions of run-decisions.ts.
 *
 * Why a plain pg pool and not Prisma: the claim and the finish run once per target each, and on
 * small VMs their cost was mostly per-message overhead. The claim is one round trip
 * (`BEGIN` + run lock + claim + `COMMIT`), the finish two (`BEGIN` + run lock + target update,
 * then the run update + `COMMIT`). The rare transitions use the same statements and transport.
 *
 * Lanes: a job works the targets of one run one after the other. When a finish admits the next
 * target of the run into the window, the finishing job may take it for its next turn and claim
 * it in the same transaction (the finish's second round trip), instead of handing it to the
 * queue as a job of its own: one control-plane transaction and no queue traffic per target, and
 * the window is unchanged (the job held one target and now holds the next). The target records
 * the job that holds it (job_id), so the reconciler looks for that job when it heals.
 *
 * Every transaction that changes a target's status first locks its run row; each statement after
 * the lock takes its snapshot once the lock is granted (READ COMMITTED), so it sees every change
 * committed by the lock's previous holders.
 */
import type { ControlPlanePool } from '../db/control-plane.js';
import { unprefixRow } from '../db/control-plane-rows.js';
import { createStatementTransport, execute } from '../db/prepared-statements.js';
import type { Send } from '../db/prepared-statements.js';
import { ConflictError, NotFoundError, PreconditionFailedError } from '../errors.js';
import type { MigrationRun, MigrationRunTarget, TenantDatabase } from '../generated/prisma/client.js';
import {
  EMPTY_COUNTS,
  RunStatus,
  TargetStatus,
  countTarget,
  countsOfRun,
  decideRun,
  decideUnclaimed,
  describeBusyTenants,
  isRunActive,
  moveTarget,
  progressDelta,
  progressOf,
  progressOfRun,
} from './run-decisions.js';
import type { BusyTenant, RunDecision, TargetCounts, UnclaimedState } from './run-decisions.js';
import type { RunProgress } from '../pubsub/run-events.js';
import type { TargetJob } from './target-dispatch.js';
import { ONE_ACTIVE_TARGET_INDEX, RUN_STATEMENTS as S } from './sql/run-statements.js';

const withStatements = createStatementTransport(S);

// Long enough for hundreds of queued finishes of one run, short enough to surface a stuck lock.
const RUN_LOCK_TIMEOUT = '30s';
const BEGIN = `BEGIN; SET LOCAL lock_timeout = '${RUN_LOCK_TIMEOUT}'`;
// A non-UUID id can only be a tenant that does not exist; checked before it reaches a uuid cast.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The outcome of settling a run: the run after the change and what to do after commit. */
export interface SettleResult {
  readonly run: MigrationRun;
  /** Targets just marked QUEUED: enqueue them after commit. */
  readonly admitted: readonly string[];
  /** The run ended in this transaction: publish RUN_FINISHED after commit. */
  readonly ended: boolean;
  readonly decision: RunDecision;
  /** Targets of any run woken from waiting for their server's budget: enqueue them after commit. */
  readonly woken?: readonly TargetJob[];
}

/** A target just marked RUNNING, with its run (after the change) and its tenant database. */
export interface ClaimedTarget {
  readonly run: MigrationRun;
  readonly target: MigrationRunTarget;
  /** The database as it was before the claim marked it MIGRATING. */
  readonly database: TenantDatabase;
  /** The run went QUEUED → RUNNING with this claim: publish RUN_STARTED. */
  readonly runStarted: boolean;
}

/** A dry-run ADOPT target of an unregistered schema just marked RUNNING, with its run and server. */
export interface ClaimedUnregisteredTarget {
  readonly run: MigrationRun;
  readonly target: MigrationRunTarget;
  /** The server the schema is on: its id and sealed connection string (for SecretBox). */
  readonly server: { readonly id: string; readonly connectionStringEncrypted: string };
  readonly schemaName: string;
  readonly runStarted: boolean;
}

/** A claim refused because the target's server runs its budget already: QUEUED, without a job, until woken. */
export interface DeferredTarget {
  readonly deferred: true;
}

/** A claim that claimed nothing; `picked` is the job's target when it is the job's to end (settleUnclaimed). */
export interface UnclaimedTarget {
  readonly unclaimed: true;
  readonly picked: string | null;
}

/** What a claim came to. */
export type ClaimOutcome = ClaimedTarget | DeferredTarget | UnclaimedTarget;

/** A delivery of a job: the target it was enqueued for, its run, and its own id (see TargetJob). */
export interface JobRef {
  readonly targetId: string;
  readonly runId: string;
  readonly jobId: string;
}

/** A tenant's structure read after its move, as its tenant database row records it. */
export interface TargetFingerprint {
  readonly hash: string;
  /** Null when the version has no expected structure (not a catalog version). */
  readonly expectedHash: string | null;
  readonly matchesExpected: boolean | null;
  /** The differences from the expected structure, capped, as stored (JSON). */
  readonly differences: readonly unknown[];
  readonly computedAt: Date;
}

/** How a target ended, with what its row and its tenant database record. */
export type TargetEnd =
  | {
      readonly status: typeof TargetStatus.SUCCEEDED;
      readonly fromVersion: string | null;
      readonly toVersion: string | null;
      readonly appliedVersions: readonly string[];
      readonly plannedSql: string | null;
      /** Recorded on the tenant database with its version; none: its last fingerprint stays. */
      readonly fingerprint?: TargetFingerprint;
    }
  | {
      readonly status: typeof TargetStatus.FAILED;
      readonly appliedVersions: readonly string[];
      /** The version the tenant's ledger reached; undefined when it could not be read. */
      readonly reached: string | null | undefined;
      readonly error: string;
      readonly errorCode: string | null;
    };

/** What a new fleet run is (the run row's settings). */
export interface NewFleetRun {
  readonly kind: 'MIGRATE' | 'ROLLBACK' | 'VERIFY' | 'ADOPT' | 'BACKUP';
  /** Each target backs its tenant up before it changes it. */
  readonly backup?: boolean;
  readonly targetVersion: string | null;
  readonly dryRun: boolean;
  readonly concurrency: number;
  readonly canarySize: number | null;
  readonly maxFailures: number | null;
  readonly transactionMode: 'PER_TENANT' | 'PER_MIGRATION';
  readonly requestedBy: string;
  /** The catalog release the run executes. */
  readonly catalogReleaseId: string;
  /** MIGRATE and ROLLBACK: touch drifted tenants too. */
  readonly allowDrift?: boolean;
  /** ADOPT: the history source and versionMap, stored on the run for its targets. */
  readonly adoptOptions?: unknown;
}

/** Which tenants a fleet run covers, already validated. */
export interface FleetSelection {
  /** Tenant ids; null: every tenant that matches the other filters. */
  readonly ids: readonly string[] | null;
  /** Tenant statuses (UPPER); the caller defaults them (ACTIVE). */
  readonly statuses: readonly string[];
  /** Tenant environments (UPPER); null: any. */
  readonly environments: readonly string[] | null;
}

/**
/** What an admission check returns: nothing, or the catalog release the run pins instead (and its spelling of the target version). */
export type ReleaseChoice =
  { readonly catalogReleaseId: string; readonly targetVersion: string | null } | undefined | void;

/**
 * Admits a fleet run: inserts the run (QUEUED) and one PENDING target per selected tenant
 * database, in one transaction, and returns the run's id. `check` sees the selected databases'
 * distinct cached versions and may throw to refuse, or return the release to pin (a rollback's
 * depends on those versions). Nothing is created when it throws:
 * NotFoundError for an unknown or deleted tenant id, ConflictError when a selected tenant is
 * held by another unfinished run (naming up to 10 of them and the run), PreconditionFailedError
 * when nothing matches.
 */
export function admitFleetRun(
  pool: ControlPlanePool,
  run: NewFleetRun,
  selection: FleetSelection,
  check: (versions: readonly (string | null)[]) => ReleaseChoice | Promise<ReleaseChoice> = () => undefined,
): Promise<string> {
  return withStatements(pool, async (send) => {
    const ids = selection.ids ? [...new Set(selection.ids)] : null;
    if (ids) {
      const [missing] = await send(execute(S.missingTenants, ids), 1);
      const names = missing!.rows.map((row) => row.id as string);
      if (names.length > 0) throw new NotFoundError(`No such tenant: ${names.join(', ')}`);
    }
    const [inserted] = await send(`BEGIN; ${insertRunSql(run)}`, 1);
    const runId = inserted!.rows[0]!.id as string;
    const [targets] = await send(
      execute(
        S.insertFleetTargets,
        runId,
        selection.statuses.map((status) => status.toLowerCase()),
        ids ? ids.filter((id) => UUID.test(id)) : null,
        selection.environments ? selection.environments.map((e) => e.toLowerCase()) : null,
        run.canarySize ?? 0,
        run.dryRun,
      ),
      1,
    );
    const { count, versions, busy } = targets!.rows[0] as {
      count: number;
      versions: (string | null)[];
      busy: string[];
    };
    if (busy.length > 0) {
      const [holders] = await send(execute(S.busyTenants, busy), 1);
      return rollbackAndThrow(send, busyError(holders!.rows as unknown as BusyTenant[], busy.length));
    }
    if (count === 0) {
      return rollbackAndThrow(send, new PreconditionFailedError('No tenant database matches the selector'));
    }
    let release: ReleaseChoice;
    try {
      release = await check(versions);
    } catch (error) {
      return rollbackAndThrow(send, error);
    }
    const pin = release
      ? `${execute(S.setRunRelease, runId, release.catalogReleaseId, release.targetVersion)}; `
      : '';
    await send(`${pin}${execute(S.setRunTotal, runId, count)}; COMMIT`, release ? 3 : 2);
    return runId;
  });
}

/**
 * Admits a dry-run ADOPT run over existing schemas of a server that no tenant names: inserts the
 * run (QUEUED) and one PENDING target per schema, without tenant rows, in one transaction, and
 * returns the run's id. PreconditionFailedError (nothing created) when `schemas.names` is empty.
 */
export function admitUnregisteredAdoptRun(
  pool: ControlPlanePool,
  run: NewFleetRun,
  schemas: { readonly serverId: string; readonly names: readonly string[] },
): Promise<string> {
  return withStatements(pool, async (send) => {
    const [inserted] = await send(`BEGIN; ${insertRunSql(run)}`, 1);
    const runId = inserted!.rows[0]!.id as string;
    const [targets] = await send(
      execute(S.insertUnregisteredTargets, runId, schemas.serverId, [...schemas.names]),
      1,
    );
    const count = targets!.rows[0]!.count as number;
    if (count === 0) return rollbackAndThrow(send, new PreconditionFailedError('No schema to adopt'));
    await send(`${execute(S.setRunTotal, runId, count)}; COMMIT`, 2);
    return runId;
  });
}

/**
 * Admits a RESTORE run of one tenant database from `backupId` (its target QUEUED, like a
 * provisioning) and returns the run's id. NotFoundError when the backup is not of that database;
 * ConflictError when another run holds the database.
 */
export async function admitRestoreRun(
  pool: ControlPlanePool,
  request: { readonly tenantDatabaseId: string; readonly backupId: string; readonly requestedBy: string },
): Promise<string> {
  try {
    return await withStatements(pool, async (send) => {
      const [inserted] = await send(
        execute(S.insertRestoreRun, request.tenantDatabaseId, request.backupId, request.requestedBy),
        1,
      );
      const id = inserted!.rows[0]?.id as string | undefined;
      if (!id) throw new NotFoundError(`No such backup of this tenant: ${request.backupId}`);
      return id;
    });
  } catch (error) {
    if ((error as { constraint?: unknown }).constraint === ONE_ACTIVE_TARGET_INDEX) {
      throw new ConflictError('Another run is working on this tenant; wait for it or cancel it first', {
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * Claims the job's target for it in one round trip (see the claim statement): the target the job
 * holds in flight (a lane's current one, delivered again after a crash), else the one it was
 * enqueued for. Returns `{ unclaimed }` when it cannot be claimed (no such target, ended, a
 * deleted tenant, a run that stopped scheduling, another job's); the caller then ends `picked`
 * with settleUnclaimed. Returns `{ deferred: true }` when its server already
 * runs its budget of targets (counted under the server's lock): the target stays QUEUED and the
 * caller lets its job go; the next finish on that server, or the reconciler, enqueues it again.
 *
 * The claim commits without waiting for its WAL flush (synchronous_commit off): a claim lost to
 * a server crash leaves the target QUEUED, its job is delivered again (or re-enqueued by the
 * reconciler) and the claim is simply made again; the tenant's own work is guarded by its ledger.
 * The finish, which other readers act on, commits durably.
 */
export function claimTarget(pool: ControlPlanePool, job: JobRef): Promise<ClaimOutcome> {
  return withStatements(pool, async (send) => {
    const args = [job.targetId, job.jobId] as const;
    const [claim] = await send(
      `${BEGIN}; SET LOCAL synchronous_commit = off; ${execute(S.lockRunOfTarget, job.targetId)}; ` +
        `${execute(S.lockServerOfTarget, ...args)}; ${execute(S.claimTarget, ...args)}; COMMIT`,
      2,
    );
    return claimOutcomeOf(claim!.rows[0]);
  });
}

/**
 * Claims a dry-run ADOPT target of an unregistered schema (which claimTarget, joining the
 * tenant, never claims) in one round trip. Null when it cannot be claimed: not such a target,
 * ended, or its run stopped scheduling (whose statements already ended it).
 */
export function claimUnregisteredTarget(
  pool: ControlPlanePool,
  targetId: string,
): Promise<ClaimedUnregisteredTarget | null> {
  return withStatements(pool, async (send) => {
    const [claim] = await send(
      `${BEGIN}; SET LOCAL synchronous_commit = off; ${execute(S.lockRunOfTarget, targetId)}; ` +
        `${execute(S.claimUnregisteredTarget, targetId)}; COMMIT`,
      2,
    );
    const row = claim?.rows[0];
    if (!row) return null;
    const target = unprefixRow<MigrationRunTarget>(row, 't_');
    return {
      run: unprefixRow<MigrationRun>(row, 'r_'),
      target,
      server: { id: target.serverId!, connectionStringEncrypted: row.serverSealed as string },
      schemaName: target.schemaName!,
      runStarted: row.runStarted === true,
    };
  });
}

/**
 * Ends a target claimTarget refused, when it should end (see decideUnclaimed): SKIPPED with the
 * reason for a deleted tenant, CANCELLED or SKIPPED when its run stopped scheduling before it
 * started. Returns the settle when it ended one, else null (ended already, or a stray job).
 */
export function settleUnclaimed(pool: ControlPlanePool, targetId: string): Promise<SettleResult | null> {
  return withStatements(pool, async (send) => {
    const [state] = await send(
      `${BEGIN}; ${execute(S.lockRunOfTarget, targetId)}; ${execute(S.unclaimable, targetId)}`,
      1,
    );
    const row = state!.rows[0] as (UnclaimedState & { runId: string }) | undefined;
    const end = row ? decideUnclaimed(row) : null;
    if (!row || !end) {
      await send('COMMIT', 1);
      return null;
    }
    await send(execute(S.endUnstarted, targetId, end.status.toLowerCase(), end.reason), 1);
    return settleLocked(send, row.runId);
  });
}

/** A finish, and the job's next turn when it took one. */
export interface FinishResult extends SettleResult {
  /** The target the finishing job claimed for its next turn (or found over its server's budget). */
  readonly next: ClaimedTarget | DeferredTarget | null;
}

/**
 * Records the end of a target in one transaction of two round trips: locks the run, updates the
 * target and its tenant database (and tenant, for PROVISION), decides from the run's counters,
 * halts or admits the next targets and writes the counters by delta. Returns null when the
 * target is not RUNNING (another delivery finished it, or it was never claimed).
 *
 * With `nextTurn`, the job takes the first target admitted here on the same server (whose lock
 * the transaction holds) and claims it in the same round trip: `next`. It takes none when the
 * finish woke a target waiting for that server's budget: the freed slot is the waiting one's.
 */
export function finishTarget(
  pool: ControlPlanePool,
  job: JobRef,
  targetId: string,
  end: TargetEnd,
  nextTurn = false,
): Promise<FinishResult | null> {
  const { runId, jobId } = job;
  return withStatements(pool, async (send) => {
    // A finish stuck behind the run lock gives up (55P03, transient): the job is retried, the
    // retry re-plans from the ledger, finds nothing to do and finishes the target then.
    // The server's lock after the run's: a claim on that server deferring a target meanwhile has
    // committed before this statement's snapshot, so the finish wakes it.
    const [locked, , ended] = await send(
      `${BEGIN}; ${execute(S.lockRun, runId)}; ${execute(S.lockServerOfTarget, targetId, jobId)}; ` +
        endTargetSql(runId, targetId, end),
      3,
    );
    const run = locked?.rows[0] as MigrationRun | undefined;
    const move = ended?.rows[0] as TargetMove | undefined;
    if (!run || !move?.updated || move.status === null) {
      await send('COMMIT', 1);
      return null;
    }
    // The counts were read before the target's own change: apply it.
    const counts = moveTarget(countsOfRun(run, move), move.status, end.status, move.canary);
    const turn = nextTurn && move.woken.length === 0 ? { jobId, after: targetId } : null;
    const { settled, claim } = await applyDecisionAndClaim(
      send,
      run,
      counts,
      progressDelta(move.status, end.status),
      turn,
    );
    const next = claim ? claimOutcomeOf(claim) : null;
    return {
      ...settled,
      ...(move.woken.length === 0 ? {} : { woken: move.woken.map(jobOf) }),
      next: next && !('unclaimed' in next) ? next : null,
    };
  });
}

/**
 * Settles a run: halts or ends it when its targets say so, admits PENDING targets into the
 * window (marking them QUEUED) and rewrites its counters from a recount. Idempotent. Null when
 * the run does not exist.
 */
export function settleRun(pool: ControlPlanePool, runId: string): Promise<SettleResult | null> {
  return withStatements(pool, async (send) => {
    await send(BEGIN, 2);
    return settleLocked(send, runId);
  });
}

/** The targets of a run admitted into its window (QUEUED), in position order. */
export async function queuedTargets(pool: ControlPlanePool, runId: string): Promise<string[]> {
  return withStatements(pool, async (send) => {
    const [result] = await send(execute(S.queuedTargets, runId), 1);
    return result!.rows.map((row) => row.id as string);
  });
}

/**
 * Cancels an active run: it becomes CANCELLED and every target that has not started CANCELLED;
 * running targets finish, and the run ends with the last of them. NotFoundError,
 * PreconditionFailedError when it has already stopped scheduling.
 */
export function cancelRun(pool: ControlPlanePool, runId: string): Promise<SettleResult> {
  return withStatements(pool, async (send) => {
    const [locked] = await send(`${BEGIN}; ${execute(S.lockRun, runId)}`, 1);
    const run = locked!.rows[0] as MigrationRun | undefined;
    if (!run) return rollbackAndThrow(send, new NotFoundError(`No such migration run: ${runId}`));
    if (!isRunActive(run.status)) {
      return rollbackAndThrow(send, new PreconditionFailedError(`Run ${runId} has already ended`));
    }
    await send(execute(S.cancelRun, runId), 1);
    return (await settleLocked(send, runId))!;
  });
}

/**
 * Puts the FAILED, CANCELLED and SKIPPED targets of an ended run back to PENDING and the run
 * back to work. NotFoundError; PreconditionFailedError while it has not ended or when it has
 * nothing to retry; ConflictError when another run now holds one of those tenants.
 */
export async function retryRun(pool: ControlPlanePool, runId: string): Promise<SettleResult> {
  try {
    return await withStatements(pool, async (send) => {
      const [locked] = await send(`${BEGIN}; ${execute(S.lockRun, runId)}`, 1);
      const run = locked!.rows[0] as MigrationRun | undefined;
      if (!run) return rollbackAndThrow(send, new NotFoundError(`No such migration run: ${runId}`));
      if (isRunActive(run.status) || run.finishedAt === null) {
        return rollbackAndThrow(send, new PreconditionFailedError(`Run ${runId} is still running`));
      }
      const [blockers] = await send(execute(S.retryBlockers, runId), 1);
      const busy = blockers!.rows as unknown as BusyTenant[];
      if (busy.length > 0) return rollbackAndThrow(send, busyError(busy, busy[0]!.total));
      const [reset] = await send(execute(S.retryRun, runId), 1);
      if ((reset!.rows[0]!.reset as number) === 0) {
        return rollbackAndThrow(
          send,
          new PreconditionFailedError(`Run ${runId} has no failed or cancelled targets`),
        );
      }
      return (await settleLocked(send, runId))!;
    });
  } catch (error) {
    // Another run took one of the tenants between the check and the reset.
    if ((error as { constraint?: unknown }).constraint === ONE_ACTIVE_TARGET_INDEX) {
      throw new ConflictError(`Run ${runId} cannot be retried: another run now holds its tenants`, {
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * Wakes targets deferred for their server's budget where the budget has room (it grew, or a
 * wake was lost with a crashed process): returns them to enqueue.
 */
export function wakeDeferredTargets(pool: ControlPlanePool): Promise<TargetJob[]> {
  return withStatements(pool, async (send) => {
    const [result] = await send(execute(S.wakeDeferred), 1);
    return result!.rows.map((row) => ({ targetId: row.targetId as string, runId: row.runId as string }));
  });
}

/**
 * Whether a target that was deferred has been woken since (QUEUED, no longer deferred): then
 * the waker's enqueue may have met the deferring job still active, a no-op, and the caller
 * enqueues it once that job has ended.
 */
export function isWokenTarget(pool: ControlPlanePool, targetId: string): Promise<boolean> {
  return withStatements(pool, async (send) => {
    const [result] = await send(execute(S.wokenTarget, targetId), 1);
    return result!.rows.length > 0;
  });
}

/** The ids of runs that have not finished, whatever their status. */
export function unfinishedRuns(pool: ControlPlanePool): Promise<string[]> {
  return withStatements(pool, async (send) => {
    const [result] = await send(execute(S.unfinishedRuns), 1);
    return result!.rows.map((row) => row.id as string);
  });
}

/**
 * The jobs that should exist for the run's targets in flight (QUEUED or RUNNING): the job that
 * holds each, or the target's own (its id) when none holds it yet.
 */
export function inFlightJobs(pool: ControlPlanePool, runId: string): Promise<string[]> {
  return withStatements(pool, async (send) => {
    const [result] = await send(execute(S.inFlightJobs, runId), 1);
    return result!.rows.map((row) => row.id as string);
  });
}

/**
 * Of `jobIds`, those that still hold a target in flight, checked under the run's lock so that a
 * target that ended meanwhile is never handed out again.
 */
export function stillInFlight(
  pool: ControlPlanePool,
  runId: string,
  jobIds: readonly string[],
): Promise<string[]> {
  return withStatements(pool, async (send) => {
    const [, result] = await send(
      `${BEGIN}; ${execute(S.lockRun, runId)}; ${execute(S.stillInFlight, runId, jobIds)}; COMMIT`,
      3,
    );
    return result!.rows.map((row) => row.id as string);
  });
}

interface TargetMove {
  readonly status: string | null;
  /** Targets woken for the server's freed slot, each `<target id> <run id>`. */
  readonly woken: readonly string[];
  readonly canary: boolean;
  readonly updated: boolean;
  readonly queued: number;
  readonly canaryUnfinished: number;
  readonly canaryFailed: number;
}

/** Recounts the targets of the run this transaction has locked, then applies decideRun and commits. */
async function settleLocked(send: Send, runId: string): Promise<SettleResult | null> {
  const [locked, counted] = await send(`${execute(S.lockRun, runId)}; ${execute(S.countTargets, runId)}`, 2);
  const run = locked!.rows[0] as MigrationRun | undefined;
  if (!run) {
    await send('COMMIT', 1);
    return null;
  }
  const counts = counted!.rows.reduce<TargetCounts>(
    (sum, row) => countTarget(sum, row.status as string, row.canary as boolean, row.n as number),
    EMPTY_COUNTS,
  );
  // The stored counters become the recount: apply the difference.
  return applyDecision(send, run, counts, difference(progressOf(counts), progressOfRun(run)));
}

/**
 * Halts, ends or admits per decideRun and writes the run's counters (`delta` plus the targets
 * this statement skips) and status, then commits the transaction that locked the run row.
 */
async function applyDecision(
  send: Send,
  run: MigrationRun,
  counts: TargetCounts,
  delta: RunProgress,
): Promise<SettleResult> {
  return (await applyDecisionAndClaim(send, run, counts, delta, null)).settled;
}

/**
 * applyDecision, and with `turn` (when the decision admits anything) the claim of the target it
 * gave job `turn.jobId` (see the applyDecision statement), in the same round trip.
 */
async function applyDecisionAndClaim(
  send: Send,
  run: MigrationRun,
  counts: TargetCounts,
  delta: RunProgress,
  turn: { readonly jobId: string; readonly after: string } | null,
): Promise<{ settled: SettleResult; claim: Record<string, unknown> | undefined }> {
  const decision = decideRun(run, counts);
  const status = decision.halt ? RunStatus.HALTED : (decision.endStatus ?? run.status);
  const ended = decision.endStatus !== null && run.finishedAt === null;
  const taking = turn !== null && decision.admit > 0;
  const claimSql = taking ? `; ${execute(S.claimTarget, null, turn.jobId)}` : '';
  const [applied, claimed] = await send(
    `${execute(
      S.applyDecision,
      run.id,
      decision.halt,
      !decision.canaryOnly,
      decision.admit,
      delta.pending,
      delta.running,
      delta.succeeded,
      delta.failed,
      delta.skipped,
      delta.cancelled,
      status.toLowerCase(),
      ended,
      taking ? turn.jobId : null,
      taking ? turn.after : null,
    )}${claimSql}; COMMIT`,
    taking ? 3 : 2,
  );
  const { admitted, ...updated } = applied!.rows[0] as MigrationRun & { admitted: string[] };
  return {
    settled: { run: updated, admitted, ended, decision },
    claim: taking ? claimed!.rows[0] : undefined,
  };
}

/** A claim statement's row as a ClaimOutcome. */
function claimOutcomeOf(row: Record<string, unknown> | undefined): ClaimOutcome {
  if (row?.deferred === true) return { deferred: true };
  if (!row || row.r_id == null) return { unclaimed: true, picked: (row?.picked as string | null) ?? null };
  return {
    run: unprefixRow<MigrationRun>(row, 'r_'),
    target: unprefixRow<MigrationRunTarget>(row, 't_'),
    database: unprefixRow<TenantDatabase>(row, 'd_'),
    runStarted: row.runStarted === true,
  };
}

/** The statement that inserts `run` (QUEUED, no targets yet) and returns its id. */
function insertRunSql(run: NewFleetRun): string {
  return execute(
    S.insertRun,
    run.kind.toLowerCase(),
    run.targetVersion,
    run.dryRun,
    run.concurrency,
    run.canarySize,
    run.maxFailures,
    run.transactionMode.toLowerCase(),
    run.requestedBy,
    run.catalogReleaseId,
    run.allowDrift ?? false,
    run.adoptOptions === undefined ? null : JSON.stringify(run.adoptOptions),
    run.backup ?? false,
  );
}

function endTargetSql(runId: string, targetId: string, end: TargetEnd): string {
  if (end.status === TargetStatus.SUCCEEDED) {
    const fingerprint = end.fingerprint;
    return execute(
      S.endSucceeded,
      targetId,
      runId,
      end.fromVersion,
      end.toVersion,
      end.appliedVersions,
      end.plannedSql,
      fingerprint !== undefined,
      fingerprint?.hash ?? null,
      fingerprint?.expectedHash ?? null,
      fingerprint?.matchesExpected ?? null,
      fingerprint ? JSON.stringify(fingerprint.differences) : null,
      fingerprint ? fingerprint.computedAt.toISOString() : null,
    );
  }
  return execute(
    S.endFailed,
    targetId,
    runId,
    end.appliedVersions,
    end.reached !== undefined,
    end.reached ?? null,
    end.error,
    end.errorCode,
  );
}

function jobOf(woken: string): TargetJob {
  const [targetId = '', runId = ''] = woken.split(' ');
  return { targetId, runId };
}

function difference(after: RunProgress, before: RunProgress): RunProgress {
  return {
    total: after.total - before.total,
    pending: after.pending - before.pending,
    running: after.running - before.running,
    succeeded: after.succeeded - before.succeeded,
    failed: after.failed - before.failed,
    skipped: after.skipped - before.skipped,
    cancelled: after.cancelled - before.cancelled,
  };
}

function busyError(holders: readonly BusyTenant[], total: number): ConflictError {
  return new ConflictError(describeBusyTenants(holders, total));
}

/** Rolls back the open transaction and throws `error`: an expected refusal that changed nothing. */
async function rollbackAndThrow(send: Send, error: unknown): Promise<never> {
  await send('ROLLBACK', 1);
  throw error;
}
