/**
 * The hot path of a target's life in the control plane, in raw SQL through Prisma (model queries
 * cost several times more CPU here): claiming it in one statement, and finishing it in one
 * transaction of three statements that applies exact deltas to the run's counters.
 *
 * Lock order is always the run row first, then its targets. Every transaction that changes a
 * target's status also writes its run row before it commits; `claimTarget` relies on that to
 * know that the target it read is still as it was (see there).
 */
import type { ControlPlaneDb, ControlPlaneTx } from '../db/control-plane.js';
import { Prisma } from '../generated/prisma/client.js';
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
 * statement: counts an attempt, starts the run, moves the counters (QUEUED → RUNNING only, so a
 * re-delivery does not count twice) and returns what the worker needs. Returns null for anything
 * unusual (no such target, target not in flight, run not active, or the run kept changing between
 * the statement's snapshot and its lock); the caller then takes the careful path under the run lock.
 *
 * Why the snapshot is safe: the run row is updated only if its `xmin` is still the one the
 * statement's snapshot saw. Every transaction that changes a target's status writes the run row
 * while holding its lock, so an unchanged `xmin` proves no target changed since the snapshot.
 */
export async function claimTarget(db: ControlPlaneDb, targetId: string): Promise<ClaimedTarget | null> {
  // Another transaction changed the run between the snapshot and the lock: a fresh snapshot
  // usually succeeds, and is far cheaper than the careful path.
  for (let tries = 0; tries < CLAIM_TRIES; tries += 1) {
    const claimed = await claimOnce(db, targetId);
    if (claimed !== RACED) return claimed;
  }
  return null;
}

const CLAIM_TRIES = 3;
const RACED = Symbol('raced');

async function claimOnce(db: ControlPlaneDb, targetId: string): Promise<ClaimedTarget | null | typeof RACED> {
  const rows = await db.$queryRaw<Record<string, unknown>[]>`
    WITH s AS (
      SELECT r.id, r.xmin AS seen, r.status AS run_status, t.status AS target_status
      FROM control_plane.migration_run_targets t
      JOIN control_plane.migration_runs r ON r.id = t.run_id
      WHERE t.id = ${targetId}::uuid
        AND t.status IN ('queued', 'running') AND r.status IN ('queued', 'running')
    ), r AS (
      UPDATE control_plane.migration_runs r SET
        status = 'running',
        started_at = coalesce(r.started_at, now()),
        pending = r.pending - (s.target_status = 'queued')::int,
        running = r.running + (s.target_status = 'queued')::int
      FROM s WHERE r.id = s.id AND r.xmin = s.seen
      RETURNING r.*, s.run_status AS old_run_status
    ), t AS (
      UPDATE control_plane.migration_run_targets t SET
        status = 'running',
        attempts = t.attempts + 1,
        started_at = coalesce(t.started_at, now())
      FROM r WHERE t.id = ${targetId}::uuid AND t.run_id = r.id AND t.status IN ('queued', 'running')
      RETURNING t.*
    )
    SELECT ${RUN_COLUMNS('r', 'r_')}, ${TARGET_COLUMNS('t', 't_')}, ${DATABASE_COLUMNS('d', 'd_')},
      r.old_run_status = 'queued' AS "runStarted"
    FROM s LEFT JOIN r ON r.id = s.id LEFT JOIN t ON t.run_id = r.id
    LEFT JOIN control_plane.tenant_databases d ON d.id = t.tenant_database_id`;
  const row = rows[0];
  if (!row) return null;
  if (row.t_id === null) return RACED;
  return {
    run: unprefix<MigrationRun>(row, 'r_'),
    target: unprefix<MigrationRunTarget>(row, 't_'),
    database: unprefix<TenantDatabase>(row, 'd_'),
    runStarted: row.runStarted === true,
  };
}

/** Locks the run row for the rest of `tx` and returns it, or null when the run does not exist. */
export async function lockRunRow(tx: ControlPlaneTx, runId: string): Promise<MigrationRun | null> {
  const rows = await tx.$queryRaw<MigrationRun[]>`
    SELECT ${RUN_COLUMNS('r', '')} FROM control_plane.migration_runs r
    WHERE r.id = ${runId}::uuid FOR UPDATE`;
  return rows[0] ?? null;
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

/**
 * Records the end of a target in one transaction: locks the run, updates the target and its
 * tenant database (and tenant, for PROVISION), decides from the run's counters, halts or admits
 * the next targets and writes the counters by delta. Returns null when the target had already
 * ended (another delivery finished it). Call inside withRunTransaction.
 */
export async function finishTarget(
  tx: ControlPlaneTx,
  runId: string,
  targetId: string,
  end: TargetEnd,
): Promise<SettleResult | null> {
  const run = await lockRunRow(tx, runId);
  if (!run) return null;
  const rows = await tx.$queryRaw<TargetMove[]>(endTargetSql(run, targetId, end));
  const move = rows[0];
  if (!move?.updated || move.status === null) return null;

  // The counts were read before the target's own change: apply it.
  const before = countsOfRun(run, move);
  const counts = moveTarget(before, move.status, end.status, move.canary);
  return applyDecision(tx, run, counts, progressDelta(move.status, end.status));
}

/**
 * Halts, ends or admits per decideRun and writes the run's counters (`delta` plus the targets
 * this statement skips) and status. The run row must be locked by `tx`.
 */
async function applyDecision(
  tx: ControlPlaneTx,
  run: MigrationRun,
  counts: ReturnType<typeof countsOfRun>,
  delta: ReturnType<typeof progressDelta>,
): Promise<SettleResult> {
  const decision = decideRun(run, counts);
  const status = decision.halt ? RunStatus.HALTED : (decision.endStatus ?? run.status);
  const ended = decision.endStatus !== null && run.finishedAt === null;
  const rows = await tx.$queryRaw<(MigrationRun & { admitted: string[] })[]>`
    WITH halted AS (
      UPDATE control_plane.migration_run_targets SET status = 'skipped', finished_at = now()
      WHERE run_id = ${run.id}::uuid AND ${decision.halt}::boolean AND status IN ('pending', 'queued')
      RETURNING 1
    ), picked AS (
      SELECT id FROM control_plane.migration_run_targets
      WHERE run_id = ${run.id}::uuid AND status = 'pending' AND (${!decision.canaryOnly}::boolean OR canary)
      ORDER BY position
      LIMIT ${decision.admit}::int
      FOR UPDATE SKIP LOCKED
    ), admitted AS (
      UPDATE control_plane.migration_run_targets t SET status = 'queued'
      FROM picked WHERE t.id = picked.id
      RETURNING t.id, t.position
    ), r AS (
      UPDATE control_plane.migration_runs r SET
        pending = r.pending + ${delta.pending}::int - (SELECT count(*)::int FROM halted),
        running = r.running + ${delta.running}::int,
        succeeded = r.succeeded + ${delta.succeeded}::int,
        failed = r.failed + ${delta.failed}::int,
        skipped = r.skipped + ${delta.skipped}::int + (SELECT count(*)::int FROM halted),
        cancelled = r.cancelled + ${delta.cancelled}::int,
        status = ${status.toLowerCase()}::control_plane.run_status,
        finished_at = CASE WHEN ${ended}::boolean THEN now() ELSE r.finished_at END
      WHERE r.id = ${run.id}::uuid
      RETURNING r.*
    )
    SELECT ${RUN_COLUMNS('r', '')}, ARRAY(SELECT id::text FROM admitted ORDER BY position) AS admitted
    FROM r`;
  const { admitted, ...updated } = rows[0]!;
  return { run: updated, admitted, ended, decision };
}

function endTargetSql(run: MigrationRun, targetId: string, end: TargetEnd): Prisma.Sql {
  const provision = run.kind === 'PROVISION';
  const old = Prisma.sql`
    old AS (
      SELECT id, status, canary, started_at, tenant_database_id, tenant_id
      FROM control_plane.migration_run_targets
      WHERE id = ${targetId}::uuid AND run_id = ${run.id}::uuid
    )`;
  const counts = Prisma.sql`
    SELECT upper(old.status::text) AS status, old.canary, EXISTS (SELECT 1 FROM upd) AS updated,
      (SELECT count(*)::int FROM control_plane.migration_run_targets
        WHERE run_id = ${run.id}::uuid AND status = 'queued') AS queued,
      ${run.canarySize === null ? Prisma.sql`0 AS "canaryUnfinished", 0 AS "canaryFailed"` : canaryCounts(run.id)}
    FROM old`;
  const duration = Prisma.sql`(extract(epoch FROM now() - old.started_at) * 1000)::int`;
  const notEnded = Prisma.sql`old.status NOT IN ('succeeded', 'failed', 'skipped', 'cancelled')`;
  if (end.status === TargetStatus.SUCCEEDED) {
    return Prisma.sql`
      WITH ${old}, upd AS (
        UPDATE control_plane.migration_run_targets t SET
          status = 'succeeded', from_version = ${end.fromVersion}::varchar, to_version = ${end.toVersion}::varchar,
          applied_versions = ${[...end.appliedVersions]}::text[], planned_sql = ${end.plannedSql}::text,
          error = NULL, error_code = NULL, finished_at = now(), duration_ms = ${duration}
        FROM old WHERE t.id = old.id AND ${notEnded}
        RETURNING t.id
      ), db AS (
        UPDATE control_plane.tenant_databases d SET
          schema_version = ${end.toVersion}::varchar, status = 'active', last_error = NULL
        FROM old WHERE d.id = old.tenant_database_id AND ${!run.dryRun}::boolean AND EXISTS (SELECT 1 FROM upd)
        RETURNING d.id
      ), tn AS (
        UPDATE control_plane.tenants n SET status = 'active'
        FROM old WHERE n.tenant_id = old.tenant_id AND ${provision}::boolean AND EXISTS (SELECT 1 FROM upd)
        RETURNING n.tenant_id
      )
      ${counts}`;
  }
  const hasReached = end.reached !== undefined;
  const reached = end.reached ?? null;
  return Prisma.sql`
    WITH ${old}, upd AS (
      UPDATE control_plane.migration_run_targets t SET
        status = 'failed', applied_versions = ${[...end.appliedVersions]}::text[],
        to_version = CASE WHEN ${hasReached}::boolean THEN ${reached}::varchar ELSE t.to_version END,
        error = ${end.error}::text, error_code = ${end.errorCode}::varchar,
        finished_at = now(), duration_ms = ${duration}
      FROM old WHERE t.id = old.id AND ${notEnded}
      RETURNING t.id
    ), db AS (
      UPDATE control_plane.tenant_databases d SET
        last_error = ${end.error}::text,
        status = CASE WHEN ${provision}::boolean THEN 'error'::control_plane.database_status ELSE d.status END,
        schema_version = CASE WHEN ${hasReached}::boolean THEN ${reached}::varchar ELSE d.schema_version END
      FROM old WHERE d.id = old.tenant_database_id AND EXISTS (SELECT 1 FROM upd)
      RETURNING d.id
    )
    ${counts}`;
}

// Served by the partial index idx_run_targets_canary: touches at most canary_size rows.
function canaryCounts(runId: string): Prisma.Sql {
  return Prisma.sql`
    (SELECT count(*)::int FROM control_plane.migration_run_targets
      WHERE run_id = ${runId}::uuid AND canary AND status IN ('pending', 'queued', 'running')) AS "canaryUnfinished",
    (SELECT count(*)::int FROM control_plane.migration_run_targets
      WHERE run_id = ${runId}::uuid AND canary AND status = 'failed') AS "canaryFailed"`;
}

// Columns as the Prisma client names and spells them ($ stands for the table alias).
const RUN_FIELDS = {
  id: '$.id::text',
  kind: 'upper($.kind::text)',
  status: 'upper($.status::text)',
  targetVersion: '$.target_version',
  dryRun: '$.dry_run',
  concurrency: '$.concurrency',
  maxFailures: '$.max_failures',
  canarySize: '$.canary_size',
  transactionMode: 'upper($.transaction_mode::text)',
  requestedBy: '$.requested_by',
  total: '$.total',
  pending: '$.pending',
  running: '$.running',
  succeeded: '$.succeeded',
  failed: '$.failed',
  skipped: '$.skipped',
  cancelled: '$.cancelled',
  createdAt: '$.created_at',
  updatedAt: '$.updated_at',
  startedAt: '$.started_at',
  finishedAt: '$.finished_at',
} satisfies Record<keyof MigrationRun, string>;

const TARGET_FIELDS = {
  id: '$.id::text',
  runId: '$.run_id::text',
  tenantId: '$.tenant_id::text',
  tenantDatabaseId: '$.tenant_database_id::text',
  position: '$.position',
  canary: '$.canary',
  status: 'upper($.status::text)',
  fromVersion: '$.from_version',
  toVersion: '$.to_version',
  appliedVersions: '$.applied_versions',
  plannedSql: '$.planned_sql',
  error: '$.error',
  errorCode: '$.error_code',
  attempts: '$.attempts',
  createdAt: '$.created_at',
  updatedAt: '$.updated_at',
  startedAt: '$.started_at',
  finishedAt: '$.finished_at',
  durationMs: '$.duration_ms',
} satisfies Record<keyof MigrationRunTarget, string>;

const DATABASE_FIELDS = {
  id: '$.id::text',
  tenantId: '$.tenant_id::text',
  connectionStringEncrypted: '$.connection_string_encrypted',
  databaseName: '$.database_name',
  host: '$.host',
  port: '$.port',
  status: 'upper($.status::text)',
  isolation: 'upper($.isolation::text)',
  schemaName: '$.schema_name',
  schemaVersion: '$.schema_version',
  lastError: '$.last_error',
  createdAt: '$.created_at',
  updatedAt: '$.updated_at',
} satisfies Record<keyof TenantDatabase, string>;

const RUN_COLUMNS = (alias: string, prefix: string) => columns(RUN_FIELDS, alias, prefix);
const TARGET_COLUMNS = (alias: string, prefix: string) => columns(TARGET_FIELDS, alias, prefix);
const DATABASE_COLUMNS = (alias: string, prefix: string) => columns(DATABASE_FIELDS, alias, prefix);

function columns(fields: Record<string, string>, alias: string, prefix: string): Prisma.Sql {
  return Prisma.raw(
    Object.entries(fields)
      .map(([name, expr]) => `${expr.replaceAll('$.', `${alias}.`)} AS "${prefix}${name}"`)
      .join(', '),
  );
}

function unprefix<T>(row: Record<string, unknown>, prefix: string): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    if (key.startsWith(prefix)) out[key.slice(prefix.length)] = value;
  }
  return out as T;
}
