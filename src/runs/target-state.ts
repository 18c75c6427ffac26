/**
 * The hot path of a target's life in the control plane: claiming it in one round trip, and
 * finishing it in one transaction of two round trips that applies exact deltas to the run's
 * counters.
 *
 * Why this one path bypasses Prisma: it runs twice per target, and on small VMs its cost was
 * mostly per-message overhead (Prisma's query interpreter, one socket write per protocol message,
 * and planning the big statements on every execution since Prisma sends unnamed statements). Here
 * it goes over a dedicated pg pool (ControlPlanePool) in three round trips per target: the claim
 * (`BEGIN` + run lock + claim + `COMMIT`), then `BEGIN` + run lock + target update, then the run
 * update + `COMMIT`. Each round trip is one
 * simple-protocol string (one socket write) of `EXECUTE`s of statements PREPAREd once per
 * connection, so the server plans them once; their arguments are escaped literals (a string of
 * several statements cannot carry $n parameters). Prisma stays the typed client everywhere else,
 * including the careful paths in run-state.ts; rows are mapped to its shapes (RUN_FIELDS and co).
 *
 * Lock order is always the run row first, then its targets, and every transaction that changes
 * a target's status holds its run's lock: under it, a statement sees the targets as they are.
 */
import pg from 'pg';
import type { ControlPlanePool } from '../db/control-plane.js';
import { databaseColumns, runColumns, targetColumns, unprefixRow } from '../db/control-plane-rows.js';
import type { MigrationRun, MigrationRunTarget, TenantDatabase } from '../generated/prisma/client.js';
import {
  RunStatus,
  TargetStatus,
  countsOfRun,
  decideRun,
  moveTarget,
  progressDelta,
} from './run-decisions.js';
import type { SettleResult } from './run-state.js';

/** A target just marked RUNNING, with its run (after the change) and its tenant database. */
export interface ClaimedTarget {
  readonly run: MigrationRun;
  readonly target: MigrationRunTarget;
  readonly database: TenantDatabase;
  /** The run went QUEUED → RUNNING with this claim: publish RUN_STARTED. */
  readonly runStarted: boolean;
}

/**
 * Marks a QUEUED (or, re-delivered after a crash, RUNNING) target of an active run RUNNING in one
 * round trip: locks the run row, then counts an attempt, starts the run, moves the counters
 * (QUEUED → RUNNING only, so a re-delivery does not count twice) and returns what the worker
 * needs. Returns null for anything unusual (no such target, target not in flight, run not
 * active); the caller then takes the careful path under the run lock.
 *
 * The claim is a statement of its own after the lock statement, so (READ COMMITTED) its snapshot
 * is taken once the lock is granted and sees every change committed by the lock's previous
 * holders. An earlier version claimed without the lock and detected races through the run row's
 * xmin: with a few workers finishing targets of the same run, two claims in three raced and
 * half the targets fell back to the careful path.
 *
 * The claim marks the tenant database MIGRATING (not for a dry run); the finish sets it ACTIVE
 * again, or ERROR for a failed provisioning (a failed migration leaves the tenant whole at its
 * version, so ACTIVE, with lastError). The database row keeps its pre-claim values in what the
 * claim returns.
 *
 * The claim commits without waiting for its WAL flush (synchronous_commit off): a claim lost to
 * a server crash leaves the target QUEUED, its job is delivered again (or re-enqueued by the
 * reconciler) and the claim is simply made again; the tenant's own work is guarded by its ledger.
 * The finish, which other readers act on, commits durably.
 */
export async function claimTarget(pool: ControlPlanePool, targetId: string): Promise<ClaimedTarget | null> {
  return withHotConnection(pool, async (send) => {
    const [claim] = await send(
      `BEGIN; SET LOCAL lock_timeout = '${FINISH_LOCK_TIMEOUT}'; SET LOCAL synchronous_commit = off; ` +
        `EXECUTE ${STATEMENTS.lockRunOfTarget.name}(${sqlArgs(targetId)}); ` +
        `EXECUTE ${STATEMENTS.claimTarget.name}(${sqlArgs(targetId)}); COMMIT`,
      2,
    );
    const row = claim?.rows[0];
    if (!row) return null;
    return {
      run: unprefixRow<MigrationRun>(row, 'r_'),
      target: unprefixRow<MigrationRunTarget>(row, 't_'),
      database: unprefixRow<TenantDatabase>(row, 'd_'),
      runStarted: row.runStarted === true,
    };
  });
}

/** How a target ended, with what its row and its tenant database record. */
export type TargetEnd =
  | {
      readonly status: typeof TargetStatus.SUCCEEDED;
      readonly fromVersion: string | null;
      readonly toVersion: string | null;
      readonly appliedVersions: readonly string[];
      readonly plannedSql: string | null;
    }
  | {
      readonly status: typeof TargetStatus.FAILED;
      readonly appliedVersions: readonly string[];
      /** The version the tenant's ledger reached; undefined when it could not be read. */
      readonly reached: string | null | undefined;
      readonly error: string;
      readonly errorCode: string | null;
    };

interface TargetMove {
  readonly status: string | null;
  readonly canary: boolean;
  readonly updated: boolean;
  readonly queued: number;
  readonly canaryUnfinished: number;
  readonly canaryFailed: number;
}

// Long enough for hundreds of queued finishes of one run, short enough to surface a stuck lock.
const FINISH_LOCK_TIMEOUT = '30s';

/**
 * Records the end of a target in one transaction of two round trips: locks the run, updates the
 * target and its tenant database (and tenant, for PROVISION), decides from the run's counters,
 * halts or admits the next targets and writes the counters by delta. Returns null when the
 * target had already ended (another delivery finished it).
 */
export async function finishTarget(
  pool: ControlPlanePool,
  runId: string,
  targetId: string,
  end: TargetEnd,
): Promise<SettleResult | null> {
  return withHotConnection(pool, async (send) => {
    // Two statements after BEGIN, not one: the second takes its snapshot after the run lock is
    // granted, so it sees every target change committed by the lock's previous holders.
    // A finish stuck behind the run lock gives up (55P03, transient): the job is retried, the
    // retry re-plans from the ledger, finds nothing to do and finishes the target then.
    const [locked, ended] = await send(
      `BEGIN; SET LOCAL lock_timeout = '${FINISH_LOCK_TIMEOUT}'; ` +
        `EXECUTE ${STATEMENTS.lockRun.name}(${sqlArgs(runId)}); ${endTargetSql(runId, targetId, end)}`,
      4,
    ).then((results) => results.slice(2));
    const run = locked?.rows[0] as MigrationRun | undefined;
    const move = ended?.rows[0] as TargetMove | undefined;
    if (!run || !move?.updated || move.status === null) {
      await send('COMMIT', 1);
      return null;
    }
    // The counts were read before the target's own change: apply it.
    const before = countsOfRun(run, move);
    const counts = moveTarget(before, move.status, end.status, move.canary);
    return applyDecision(send, run, counts, progressDelta(move.status, end.status));
  });
}

/**
 * Halts, ends or admits per decideRun and writes the run's counters (`delta` plus the targets
 * this statement skips) and status, then commits the transaction that locked the run row.
 */
async function applyDecision(
  send: Send,
  run: MigrationRun,
  counts: ReturnType<typeof countsOfRun>,
  delta: ReturnType<typeof progressDelta>,
): Promise<SettleResult> {
  const decision = decideRun(run, counts);
  const status = decision.halt ? RunStatus.HALTED : (decision.endStatus ?? run.status);
  const ended = decision.endStatus !== null && run.finishedAt === null;
  const args = sqlArgs(
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
  );
  const [applied] = await send(`EXECUTE ${STATEMENTS.applyDecision.name}(${args}); COMMIT`, 2);
  const { admitted, ...updated } = applied!.rows[0] as MigrationRun & { admitted: string[] };
  return { run: updated, admitted, ended, decision };
}

function endTargetSql(runId: string, targetId: string, end: TargetEnd): string {
  if (end.status === TargetStatus.SUCCEEDED) {
    const args = sqlArgs(
      targetId,
      runId,
      end.fromVersion,
      end.toVersion,
      end.appliedVersions,
      end.plannedSql,
    );
    return `EXECUTE ${STATEMENTS.endSucceeded.name}(${args})`;
  }
  const hasReached = end.reached !== undefined;
  const args = sqlArgs(
    targetId,
    runId,
    end.appliedVersions,
    hasReached,
    end.reached ?? null,
    end.error,
    end.errorCode,
  );
  return `EXECUTE ${STATEMENTS.endFailed.name}(${args})`;
}

/** Sends one simple-protocol string on the checked-out connection; returns the last `count` results. */
type Send = (sql: string, count: number) => Promise<pg.QueryResult<Record<string, unknown>>[]>;

// Connections that have the STATEMENTS prepared (a connection's prepared statements live as long as it does).
const prepared = new WeakSet<pg.PoolClient>();

/**
 * Runs `fn` on one connection of `pool`, PREPAREing STATEMENTS in the first string it sends when
 * the connection does not have them yet. On any error the connection is closed, not returned:
 * that rolls back a transaction left open and leaves no doubt about what it has prepared.
 */
async function withHotConnection<T>(pool: ControlPlanePool, fn: (send: Send) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const send: Send = async (sql, count) => {
    const prefix = prepared.has(client) ? '' : PREPARE_ALL;
    const result = (await client.query(prefix + sql)) as unknown as
      pg.QueryResult<Record<string, unknown>> | pg.QueryResult<Record<string, unknown>>[];
    prepared.add(client);
    return [result].flat().slice(-count);
  };
  try {
    const value = await fn(send);
    client.release();
    return value;
  } catch (error) {
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/** Renders values as SQL literals for EXECUTE: every string escaped, numbers checked to be integers. */
function sqlArgs(...values: readonly (string | number | boolean | null | readonly string[])[]): string {
  return values.map(sqlLiteral).join(', ');
}

function sqlLiteral(value: string | number | boolean | null | readonly string[]): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`not an integer: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return pg.escapeLiteral(value);
  return value.length === 0
    ? `'{}'::text[]`
    : `ARRAY[${value.map((item) => pg.escapeLiteral(item)).join(', ')}]::text[]`;
}

// Served by the partial index idx_run_targets_canary: touches at most canary_size rows.
const CANARY_COUNTS = `
  CASE WHEN run.canary_size IS NULL THEN 0 ELSE (SELECT count(*)::int FROM control_plane.migration_run_targets
    WHERE run_id = $2::uuid AND canary AND status IN ('pending', 'queued', 'running')) END AS "canaryUnfinished",
  CASE WHEN run.canary_size IS NULL THEN 0 ELSE (SELECT count(*)::int FROM control_plane.migration_run_targets
    WHERE run_id = $2::uuid AND canary AND status = 'failed') END AS "canaryFailed"`;

// The start of both end statements ($1 target, $2 run): the run's settings and the target as it was.
const END_HEAD = `
  WITH run AS (
    SELECT kind, dry_run, canary_size FROM control_plane.migration_runs WHERE id = $2::uuid
  ), old AS (
    SELECT id, status, canary, started_at, tenant_database_id, tenant_id
    FROM control_plane.migration_run_targets
    WHERE id = $1::uuid AND run_id = $2::uuid
  )`;

// The move the target made, and the small counts decideRun needs next to the run's counters.
const END_TAIL = `
  SELECT upper(old.status::text) AS status, old.canary, EXISTS (SELECT 1 FROM upd) AS updated,
    (SELECT count(*)::int FROM control_plane.migration_run_targets
      WHERE run_id = $2::uuid AND status = 'queued') AS queued,
    ${CANARY_COUNTS}
  FROM old, run`;

const DURATION = `(extract(epoch FROM now() - old.started_at) * 1000)::int`;
const NOT_ENDED = `old.status NOT IN ('succeeded', 'failed', 'skipped', 'cancelled')`;

/** The statements of the hot path, PREPAREd once per connection and run with EXECUTE. */
const STATEMENTS = {
  // $1 target.
  claimTarget: {
    name: 'hot_claim_target',
    text: `
      WITH s AS (
        SELECT r.id, r.status AS run_status, t.status AS target_status
        FROM control_plane.migration_run_targets t
        JOIN control_plane.migration_runs r ON r.id = t.run_id
        WHERE t.id = $1::uuid
          AND t.status IN ('queued', 'running') AND r.status IN ('queued', 'running')
      ), r AS (
        UPDATE control_plane.migration_runs r SET
          status = 'running',
          started_at = coalesce(r.started_at, now()),
          pending = r.pending - (s.target_status = 'queued')::int,
          running = r.running + (s.target_status = 'queued')::int
        FROM s WHERE r.id = s.id
        RETURNING r.*, s.run_status AS old_run_status
      ), t AS (
        UPDATE control_plane.migration_run_targets t SET
          status = 'running',
          attempts = t.attempts + 1,
          started_at = coalesce(t.started_at, now())
        FROM r WHERE t.id = $1::uuid AND t.run_id = r.id AND t.status IN ('queued', 'running')
        RETURNING t.*
      ), db AS (
        UPDATE control_plane.tenant_databases d SET status = 'migrating'
        FROM r, t WHERE d.id = t.tenant_database_id AND NOT r.dry_run AND d.status <> 'migrating'
        RETURNING d.id
      )
      SELECT ${runColumns('r', 'r_')}, ${targetColumns('t', 't_')},
        ${databaseColumns('d', 'd_')}, r.old_run_status = 'queued' AS "runStarted"
      FROM r JOIN t ON t.run_id = r.id
      JOIN control_plane.tenant_databases d ON d.id = t.tenant_database_id`,
  },
  // $1 target: locks its run's row for the rest of the transaction.
  lockRunOfTarget: {
    name: 'hot_lock_run_of_target',
    text: `SELECT 1 FROM control_plane.migration_runs r
      WHERE r.id = (SELECT t.run_id FROM control_plane.migration_run_targets t WHERE t.id = $1::uuid) FOR UPDATE`,
  },
  // $1 run: locks the run row for the rest of the transaction.
  lockRun: {
    name: 'hot_lock_run',
    text: `SELECT ${runColumns('r')} FROM control_plane.migration_runs r WHERE r.id = $1::uuid FOR UPDATE`,
  },
  // $1 target, $2 run, $3 from version, $4 to version, $5 applied versions, $6 planned SQL.
  endSucceeded: {
    name: 'hot_end_succeeded',
    text: `${END_HEAD}, upd AS (
        UPDATE control_plane.migration_run_targets t SET
          status = 'succeeded', from_version = $3::varchar, to_version = $4::varchar,
          applied_versions = $5::text[], planned_sql = $6::text,
          error = NULL, error_code = NULL, finished_at = now(), duration_ms = ${DURATION}
        FROM old WHERE t.id = old.id AND ${NOT_ENDED}
        RETURNING t.id
      ), db AS (
        UPDATE control_plane.tenant_databases d SET
          schema_version = $4::varchar, status = 'active', last_error = NULL
        FROM old, run WHERE d.id = old.tenant_database_id AND NOT run.dry_run AND EXISTS (SELECT 1 FROM upd)
        RETURNING d.id
      ), tn AS (
        UPDATE control_plane.tenants n SET status = 'active'
        FROM old, run WHERE n.tenant_id = old.tenant_id AND run.kind = 'provision' AND EXISTS (SELECT 1 FROM upd)
        RETURNING n.tenant_id
      )
      ${END_TAIL}`,
  },
  // $1 target, $2 run, $3 applied versions, $4 whether the reached version is known, $5 reached
  // version, $6 error, $7 error code.
  endFailed: {
    name: 'hot_end_failed',
    text: `${END_HEAD}, upd AS (
        UPDATE control_plane.migration_run_targets t SET
          status = 'failed', applied_versions = $3::text[],
          to_version = CASE WHEN $4::boolean THEN $5::varchar ELSE t.to_version END,
          error = $6::text, error_code = $7::varchar,
          finished_at = now(), duration_ms = ${DURATION}
        FROM old WHERE t.id = old.id AND ${NOT_ENDED}
        RETURNING t.id
      ), db AS (
        UPDATE control_plane.tenant_databases d SET
          last_error = $6::text,
          status = CASE WHEN run.kind = 'provision' THEN 'error'::control_plane.database_status
                        WHEN d.status = 'migrating' THEN 'active'::control_plane.database_status
                        ELSE d.status END,
          schema_version = CASE WHEN $4::boolean THEN $5::varchar ELSE d.schema_version END
        FROM old, run WHERE d.id = old.tenant_database_id AND EXISTS (SELECT 1 FROM upd)
        RETURNING d.id
      )
      ${END_TAIL}`,
  },
  // $1 run, $2 halt, $3 admit non-canaries too, $4 how many to admit, $5..$10 counter deltas
  // (pending, running, succeeded, failed, skipped, cancelled), $11 status, $12 whether it ends now.
  applyDecision: {
    name: 'hot_apply_decision',
    text: `
      WITH halted AS (
        UPDATE control_plane.migration_run_targets SET status = 'skipped', finished_at = now()
        WHERE run_id = $1::uuid AND $2::boolean AND status IN ('pending', 'queued')
        RETURNING 1
      ), picked AS (
        SELECT id FROM control_plane.migration_run_targets
        WHERE run_id = $1::uuid AND status = 'pending' AND ($3::boolean OR canary)
        ORDER BY position
        LIMIT $4::int
        FOR UPDATE SKIP LOCKED
      ), admitted AS (
        UPDATE control_plane.migration_run_targets t SET status = 'queued'
        FROM picked WHERE t.id = picked.id
        RETURNING t.id, t.position
      ), r AS (
        UPDATE control_plane.migration_runs r SET
          pending = r.pending + $5::int - (SELECT count(*)::int FROM halted),
          running = r.running + $6::int,
          succeeded = r.succeeded + $7::int,
          failed = r.failed + $8::int,
          skipped = r.skipped + $9::int + (SELECT count(*)::int FROM halted),
          cancelled = r.cancelled + $10::int,
          status = $11::control_plane.run_status,
          finished_at = CASE WHEN $12::boolean THEN now() ELSE r.finished_at END
        WHERE r.id = $1::uuid
        RETURNING r.*
      )
      SELECT ${runColumns('r')}, ARRAY(SELECT id::text FROM admitted ORDER BY position) AS admitted
      FROM r`,
  },
} as const;

const PREPARE_ALL = Object.values(STATEMENTS)
  .map(({ name, text }) => `PREPARE ${name} AS ${text};\n`)
  .join('');
