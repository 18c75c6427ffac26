/**
 * Every statement that moves a run or a target from one status to another, each written once
 * (see runs/run-machine.ts for the transitions that send them). They are PREPAREd once per
 * control-plane connection (db/prepared-statements.ts) and run with EXECUTE, alone or several in
 * one round trip. Parameters are `$n`; each statement lists what they are.
 *
 * Lock order is always the run row first, then its targets, and every transaction that changes
 * a target's status holds its run's lock: under it, a statement sees the targets as they are.
 * Writes to a tenant database's status and cached version are guarded by the status they expect
 * (the claim's MIGRATING), and no statement claims a target of a deleted tenant.
 */
import { databaseColumns, runColumns, targetColumns } from '../../db/control-plane-rows.js';

/** The tenant that stands for the control plane itself: it has no tenant database. */
export const SYSTEM_TENANT_NAME = 'system_admin';

/** The partial unique index that keeps one active target (not a dry run) per tenant database. */
export const ONE_ACTIVE_TARGET_INDEX = 'uq_run_targets_one_active_per_database';

// The first key of the per-server budget lock (two-int advisory locks never meet bigint ones,
// which the control plane's own migrations use): "SRVB".
const SERVER_LOCK_SPACE = 0x53525642;

// Every RUNNING target's tenant database, read first from the small partial index
// idx_run_targets_running (OFFSET 0 keeps the planner from starting at a server's thousands of
// tenant databases instead), then joined to its server by primary key.
const RUNNING_TARGETS = `SELECT tenant_database_id FROM control_plane.migration_run_targets
  WHERE status = 'running' OFFSET 0`;

// The statuses the one-active-target index covers (keep equal to migration 0006's predicate).
const ACTIVE = `('pending', 'queued', 'running')`;
const ENDED = `('succeeded', 'failed', 'skipped', 'cancelled')`;

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
    -- By primary key (OFFSET 0 keeps the planner from reading every target of the run instead).
    SELECT * FROM (SELECT id, run_id, status, canary, started_at, tenant_database_id, tenant_id
      FROM control_plane.migration_run_targets WHERE id = $1::uuid OFFSET 0) o
    WHERE o.run_id = $2::uuid
  )`;

// A target that ended frees a slot of its server's budget: the oldest target deferred for that
// server is woken (deferred_at cleared) for the caller to enqueue. Another run's target, so
// SKIP LOCKED: a finish never waits on a row lock of another run.
const END_WAKE = `
  , wake AS (
    UPDATE control_plane.migration_run_targets w SET deferred_at = NULL
    WHERE w.id = (
      SELECT x.id FROM control_plane.migration_run_targets x
      JOIN control_plane.tenant_databases xd ON xd.id = x.tenant_database_id
      WHERE x.deferred_at IS NOT NULL AND x.status = 'queued' AND EXISTS (SELECT 1 FROM upd)
        AND xd.server_id = (SELECT d.server_id FROM control_plane.tenant_databases d, old
          WHERE d.id = old.tenant_database_id)
      ORDER BY x.deferred_at LIMIT 1
      FOR UPDATE OF x SKIP LOCKED)
    RETURNING w.id, w.run_id
  )`;

// The move the target made, and the small counts decideRun needs next to the run's counters.
const END_TAIL = `
  SELECT upper(old.status::text) AS status, old.canary, EXISTS (SELECT 1 FROM upd) AS updated,
    ARRAY(SELECT w.id::text || ' ' || w.run_id::text FROM wake w) AS woken,
    (SELECT count(*)::int FROM control_plane.migration_run_targets
      WHERE run_id = $2::uuid AND status = 'queued') AS queued,
    ${CANARY_COUNTS}
  FROM old, run`;

const DURATION = `(extract(epoch FROM now() - old.started_at) * 1000)::int`;

// The target a job works on ($1 target, $2 job): the one it holds in flight (a lane
// holds at most one at a time: see run-machine.ts), else the target it was enqueued for, unless
// another job holds that one. NULL when neither: a stray delivery, which must change nothing.
// The held one is found through the small partial index idx_run_targets_job (a job id is a
// target id, unique across runs).
const JOB_TARGET = `coalesce(
    (SELECT h.id FROM control_plane.migration_run_targets h
      WHERE h.job_id = $2::uuid AND h.status IN ('queued', 'running') LIMIT 1),
    (SELECT o.id FROM control_plane.migration_run_targets o
      WHERE o.id = $1::uuid AND (o.job_id IS NULL OR o.job_id = $2::uuid OR o.status NOT IN ('queued', 'running'))))`;

/**
 * The CTEs `run` and `target` that insert a PROVISION run with its one target admitted (QUEUED,
 * counted as pending), as the run's first settle would leave them: a window of one. They read a
 * CTE `db` (id, tenant_id, schema_version) defined before them; `version`, `requestedBy` and
 * `release` are the parameter numbers of the target version, the requester and the catalog
 * release the run pins (the creating process's own, so any worker applies that SQL; NULL: the
 * worker's own catalog).
 */
export function provisionRunCtes(version: string, requestedBy: string, release: string): string {
  return `run AS (
    INSERT INTO control_plane.migration_runs
      (kind, status, target_version, dry_run, concurrency, max_failures, canary_size, transaction_mode,
       requested_by, total, pending, catalog_release_id)
    SELECT 'provision', 'queued', ${version}::varchar, false, 1, NULL, NULL, 'per_tenant', ${requestedBy}::varchar, 1, 1,
      ${release}::uuid
    FROM db
    RETURNING *
  ), target AS (
    INSERT INTO control_plane.migration_run_targets
      (run_id, tenant_id, tenant_database_id, position, canary, status, from_version)
    SELECT run.id, db.tenant_id, db.id, 0, false, 'queued', db.schema_version
    FROM run, db
    RETURNING id
  )`;
}

// The run's side of claiming target `s` (a CTE with the run's id and the target's status): the
// run's first claim starts it, and a QUEUED target moves from the pending counter to running (a
// re-delivered RUNNING one is counted already). claimTarget and claimUnregisteredTarget share it.
const CLAIM_RUN_UPDATE = `
          status = CASE WHEN r.status = 'queued' THEN 'running' ELSE r.status END,
          started_at = coalesce(r.started_at, now()),
          pending = r.pending - (s.target_status = 'queued')::int,
          running = r.running + (s.target_status = 'queued')::int`;

/** The statements of the run machine, by transition. */
export const RUN_STATEMENTS = {
  // --- locks ---------------------------------------------------------------------------------
  // $1 run: locks the run row for the rest of the transaction and returns it.
  lockRun: {
    name: 'run_lock',
    text: `SELECT ${runColumns('r')} FROM control_plane.migration_runs r WHERE r.id = $1::uuid FOR UPDATE`,
  },
  // $1 target: locks its run's row for the rest of the transaction.
  lockRunOfTarget: {
    name: 'run_lock_of_target',
    text: `SELECT 1 FROM control_plane.migration_runs r
      WHERE r.id = (SELECT t.run_id FROM control_plane.migration_run_targets t WHERE t.id = $1::uuid) FOR UPDATE`,
  },
  // $1 target, $2 job: locks the database server the tenant database of the job's target
  // (JOB_TARGET) lives on (after the run's lock), until the end of the transaction. Claims and finishes on one server take turns under it, so
  // a claim's count of the server's RUNNING targets is exact and a finish always sees a target
  // that a claim deferred. An advisory lock, not the server's row: taking it writes nothing.
  lockServerOfTarget: {
    name: 'run_lock_server_of_target',
    text: `SELECT pg_advisory_xact_lock(${SERVER_LOCK_SPACE}, hashtext(d.server_id::text))
      FROM control_plane.migration_run_targets t
      JOIN control_plane.tenant_databases d ON d.id = t.tenant_database_id
      WHERE t.id = ${JOB_TARGET} AND d.server_id IS NOT NULL`,
  },

  // --- admit: creating runs --------------------------------------------------------------------
  // $1 kind, $2 target version, $3 dry run, $4 concurrency, $5 canary size, $6 max failures,
  // $7 transaction mode, $8 requested by, $9 catalog release, $10 allow drift, $11 adopt options,
  // $12 backup first: a new run, QUEUED, with no targets yet.
  insertRun: {
    name: 'run_insert',
    text: `INSERT INTO control_plane.migration_runs
        (kind, status, target_version, dry_run, concurrency, canary_size, max_failures, transaction_mode, requested_by,
         catalog_release_id, allow_drift, adopt_options, backup)
      VALUES ($1::text::control_plane.run_kind, 'queued', $2::varchar, $3::boolean, $4::int, $5::int, $6::int,
        $7::text::control_plane.transaction_mode, $8::varchar, $9::uuid, $10::boolean, $11::jsonb, $12::boolean)
      RETURNING id::text AS id`,
  },
  // $1 tenant database id, $2 backup, $3 requested by: a RESTORE run of one tenant database, its
  // target admitted (QUEUED), as insertProvisionRun does. The tenant may be deleted (a restore
  // brings it back). A database another run holds fails on the one-active-target index.
  insertRestoreRun: {
    name: 'run_insert_restore',
    text: `
      WITH db AS (
        SELECT id, tenant_id, schema_version FROM control_plane.tenant_databases WHERE id = $1::uuid
      ), run AS (
        INSERT INTO control_plane.migration_runs
          (kind, status, target_version, dry_run, concurrency, transaction_mode, requested_by, total, pending, backup_id)
        SELECT 'restore', 'queued', b.schema_version, false, 1, 'per_tenant', $3::varchar, 1, 1, b.id
        FROM db JOIN control_plane.tenant_backups b ON b.id = $2::uuid AND b.tenant_database_id = db.id
        RETURNING *
      ), target AS (
        INSERT INTO control_plane.migration_run_targets
          (run_id, tenant_id, tenant_database_id, position, canary, status, from_version)
        SELECT run.id, db.tenant_id, db.id, 0, false, 'queued', db.schema_version
        FROM run, db
        RETURNING id
      )
      SELECT run.id::text AS id FROM run`,
  },
  // $1 tenant ids (text): those that do not exist, are deleted or are the system tenant.
  missingTenants: {
    name: 'run_missing_tenants',
    text: `SELECT id FROM unnest($1::text[]) AS id
      WHERE NOT EXISTS (SELECT 1 FROM control_plane.tenants n
        WHERE n.tenant_id::text = lower(id) AND n.deleted_at IS NULL AND n.name <> '${SYSTEM_TENANT_NAME}')`,
  },
  // $1 run, $2 statuses, $3 tenant ids (NULL: any), $4 environments (NULL: any), $5 canary size,
  // $6 dry run. One PENDING target per database of the selected tenants, positions in tenant
  // name order. A database another run holds is left out (ON CONFLICT on the one-active index)
  // and reported in `busy`, so the caller can refuse the run; never deleted tenants nor the system one.
  insertFleetTargets: {
    name: 'run_insert_fleet_targets',
    text: `
      WITH selected AS (
        SELECT d.tenant_id, d.id, d.schema_version,
               (row_number() OVER (ORDER BY t.name, d.created_at, d.id) - 1)::int AS position
          FROM control_plane.tenants t
          JOIN control_plane.tenant_databases d ON d.tenant_id = t.tenant_id
         WHERE t.deleted_at IS NULL
           AND t.name <> '${SYSTEM_TENANT_NAME}'
           AND t.status::text = ANY($2::text[])
           AND ($3::uuid[] IS NULL OR t.tenant_id = ANY($3::uuid[]))
           AND ($4::text[] IS NULL OR t.environment::text = ANY($4::text[]))
      ), inserted AS (
        INSERT INTO control_plane.migration_run_targets
          (run_id, tenant_id, tenant_database_id, position, canary, from_version, dry_run)
        SELECT $1::uuid, tenant_id, id, position, position < $5::int, schema_version, $6::boolean
          FROM selected
        ON CONFLICT (tenant_database_id) WHERE status IN ${ACTIVE} AND NOT dry_run DO NOTHING
        RETURNING tenant_database_id, from_version
      )
      SELECT (SELECT count(*)::int FROM inserted) AS count,
        coalesce((SELECT array_agg(DISTINCT from_version) FROM inserted), '{}') AS versions,
        ARRAY(SELECT s.id::text FROM selected s
          WHERE NOT EXISTS (SELECT 1 FROM inserted i WHERE i.tenant_database_id = s.id)) AS busy`,
  },
  // $1 run, $2 catalog release, $3 target version: the release a run pins, and the version as
  // that release spells it, once its targets' versions are known (a rollback pins the release
  // that holds their down files).
  setRunRelease: {
    name: 'run_set_release',
    text: `UPDATE control_plane.migration_runs SET catalog_release_id = $2::uuid, target_version = $3::varchar
      WHERE id = $1::uuid`,
  },
  // $1 run, $2 targets: the run's totals once its targets are in.
  setRunTotal: {
    name: 'run_set_total',
    text: `UPDATE control_plane.migration_runs SET total = $2::int, pending = $2::int WHERE id = $1::uuid`,
  },
  // $1 tenant database ids: who holds them (up to 10, by tenant name) and how many are held.
  busyTenants: {
    name: 'run_busy_tenants',
    text: `SELECT n.name AS tenant, t.run_id::text AS "runId", count(*) OVER ()::int AS total
      FROM control_plane.migration_run_targets t
      JOIN control_plane.tenants n ON n.tenant_id = t.tenant_id
      WHERE t.tenant_database_id = ANY($1::uuid[]) AND t.status IN ${ACTIVE} AND NOT t.dry_run
      ORDER BY n.name LIMIT 10`,
  },
  // $1 tenant database id, $2 target version, $3 requested by, $4 catalog release: a PROVISION
  // run for an existing tenant database, its target admitted (the registration statement inserts
  // the same rows).
  insertProvisionRun: {
    name: 'run_insert_provision',
    text: `
      WITH db AS (
        SELECT id, tenant_id, schema_version FROM control_plane.tenant_databases WHERE id = $1::uuid
      ), ${provisionRunCtes('$2', '$3', '$4')}
      SELECT run.id::text AS id FROM run`,
  },
  // $1 run: the targets admitted (QUEUED), for handing to the dispatcher.
  queuedTargets: {
    name: 'run_queued_targets',
    text: `SELECT id::text AS id FROM control_plane.migration_run_targets
      WHERE run_id = $1::uuid AND status = 'queued' ORDER BY position`,
  },

  // --- claim -----------------------------------------------------------------------------------
  // $1 target, $2 job: claims the job's target (JOB_TARGET) for the job. Marks a QUEUED
  // (or, re-delivered after a crash, RUNNING) target RUNNING, held by the job: counts
  // an attempt, starts the run (QUEUED → RUNNING), moves the counters (QUEUED → RUNNING only, so
  // a re-delivery does not count twice), marks the database MIGRATING (not for a dry run) and
  // returns the run, the target and the database as they were before the claim. Claims nothing
  // for a deleted tenant (but a RESTORE, which brings one back), an ended target, or a run that stopped scheduling, except a target
  // already RUNNING: a HALTED or CANCELLED run lets its running targets finish. A QUEUED target
  // whose server already runs max_concurrent_migrations targets (call with the server locked) is
  // deferred instead: it stays QUEUED, stamped deferred_at, held by no job, and the row says so
  // (the claim columns NULL, deferred true); a finish on that server or the reconciler wakes it.
  // `picked` is the job's target, claimed or not (NULL: another job holds it).
  claimTarget: {
    name: 'run_claim_target',
    text: `
      WITH pick AS (
        SELECT ${JOB_TARGET} AS id
      ), s AS (
        SELECT r.id, r.status AS run_status, t.status AS target_status,
          t.status = 'queued' AND sv.id IS NOT NULL AND sv.max_concurrent_migrations <= (
            SELECT count(*) FROM (${RUNNING_TARGETS}) x
            JOIN control_plane.tenant_databases xd ON xd.id = x.tenant_database_id
            WHERE xd.server_id = sv.id) AS over_budget
        FROM control_plane.migration_run_targets t
        JOIN control_plane.migration_runs r ON r.id = t.run_id
        JOIN control_plane.tenants n ON n.tenant_id = t.tenant_id
        JOIN control_plane.tenant_databases td ON td.id = t.tenant_database_id
        LEFT JOIN control_plane.database_servers sv ON sv.id = td.server_id
        WHERE t.id = (SELECT id FROM pick) AND (n.deleted_at IS NULL OR r.kind = 'restore')
          AND (t.status = 'running' OR (t.status = 'queued' AND r.status IN ('queued', 'running')))
      ), deferred AS (
        UPDATE control_plane.migration_run_targets t SET deferred_at = now(), job_id = NULL
        FROM s WHERE t.id = (SELECT id FROM pick) AND s.over_budget
        RETURNING t.id
      ), r AS (
        UPDATE control_plane.migration_runs r SET ${CLAIM_RUN_UPDATE}
        FROM s WHERE r.id = s.id AND NOT s.over_budget
        RETURNING r.*, s.run_status AS old_run_status
      ), t AS (
        UPDATE control_plane.migration_run_targets t SET
          status = 'running',
          attempts = t.attempts + 1,
          started_at = coalesce(t.started_at, now()),
          deferred_at = NULL,
          job_id = $2::uuid
        FROM r WHERE t.id = (SELECT id FROM pick) AND t.run_id = r.id AND t.status IN ('queued', 'running')
        RETURNING t.*
      ), db AS (
        UPDATE control_plane.tenant_databases d SET status = 'migrating'
        FROM r, t WHERE d.id = t.tenant_database_id AND NOT r.dry_run AND d.status <> 'migrating'
        RETURNING d.id
      )
      SELECT ${runColumns('r', 'r_')}, ${targetColumns('t', 't_')},
        ${databaseColumns('d', 'd_')}, r.old_run_status = 'queued' AS "runStarted",
        EXISTS (SELECT 1 FROM deferred) AS deferred, (SELECT id::text FROM pick) AS picked
      FROM (SELECT 1) one
      LEFT JOIN (r JOIN t ON t.run_id = r.id
        JOIN control_plane.tenant_databases d ON d.id = t.tenant_database_id) ON true`,
  },
  // $1 target: what decides why a target cannot be claimed (read with its run locked).
  unclaimable: {
    name: 'run_unclaimable',
    text: `SELECT t.run_id::text AS "runId", upper(t.status::text) AS "targetStatus",
        upper(r.status::text) AS "runStatus",
        n.deleted_at IS NOT NULL AND r.kind <> 'restore' AS "tenantDeleted", n.name AS tenant
      FROM control_plane.migration_run_targets t
      JOIN control_plane.migration_runs r ON r.id = t.run_id
      JOIN control_plane.tenants n ON n.tenant_id = t.tenant_id
      WHERE t.id = $1::uuid`,
  },
  // $1 target, $2 status (skipped or cancelled), $3 reason: ends a target that never ran.
  endUnstarted: {
    name: 'run_end_unstarted',
    text: `UPDATE control_plane.migration_run_targets SET
        status = $2::text::control_plane.target_status, error = $3::text, finished_at = now()
      WHERE id = $1::uuid AND status NOT IN ${ENDED}`,
  },

  // --- finish ----------------------------------------------------------------------------------
  // $1 target, $2 run, $3 from version, $4 to version, $5 applied versions, $6 planned SQL;
  // $7 whether a fingerprint was read after the move, then its $8 hash, $9 expected hash,
  // $10 match, $11 differences (JSON), $12 time of the read.
  // Only a RUNNING target ends (its claim made it so); any other finish is a late delivery's.
  // The database gets the version and ACTIVE only over the MIGRATING its claim set, and the
  // fingerprint read after the move in the same row update (none read: the last one stays); the
  // tenant of a PROVISION run becomes ACTIVE only from PENDING and only when not deleted.
  endSucceeded: {
    name: 'run_end_succeeded',
    text: `${END_HEAD}, upd AS (
        UPDATE control_plane.migration_run_targets t SET
          status = 'succeeded', from_version = $3::varchar, to_version = $4::varchar,
          applied_versions = $5::text[], planned_sql = $6::text,
          error = NULL, error_code = NULL, finished_at = now(), duration_ms = ${DURATION}
        FROM old WHERE t.id = old.id AND old.status = 'running'
        RETURNING t.id
      ), db AS (
        UPDATE control_plane.tenant_databases d SET
          schema_version = $4::varchar, status = 'active', last_error = NULL,
          fingerprint_hash = CASE WHEN $7::boolean THEN $8::varchar ELSE d.fingerprint_hash END,
          fingerprint_expected_hash = CASE WHEN $7::boolean THEN $9::varchar ELSE d.fingerprint_expected_hash END,
          fingerprint_matches = CASE WHEN $7::boolean THEN $10::boolean ELSE d.fingerprint_matches END,
          fingerprint_differences = CASE WHEN $7::boolean THEN $11::jsonb ELSE d.fingerprint_differences END,
          fingerprint_computed_at = CASE WHEN $7::boolean THEN $12::timestamptz ELSE d.fingerprint_computed_at END
        FROM old, run WHERE d.id = old.tenant_database_id AND NOT run.dry_run AND d.status = 'migrating'
          AND EXISTS (SELECT 1 FROM upd)
        RETURNING d.id
      ), tn AS (
        UPDATE control_plane.tenants n SET status = 'active'
        FROM old, run WHERE n.tenant_id = old.tenant_id AND run.kind IN ('provision', 'adopt') AND NOT run.dry_run
          AND n.status = 'pending' AND n.deleted_at IS NULL AND EXISTS (SELECT 1 FROM upd)
        RETURNING n.tenant_id
      )
      ${END_WAKE}
      ${END_TAIL}`,
  },
  // $1 target, $2 run, $3 applied versions, $4 whether the reached version is known, $5 reached
  // version, $6 error, $7 error code. A failed provisioning leaves the database ERROR; a failed
  // migration leaves it ACTIVE (whole at its version) with last_error; both only over MIGRATING.
  endFailed: {
    name: 'run_end_failed',
    text: `${END_HEAD}, upd AS (
        UPDATE control_plane.migration_run_targets t SET
          status = 'failed', applied_versions = $3::text[],
          to_version = CASE WHEN $4::boolean THEN $5::varchar ELSE t.to_version END,
          error = $6::text, error_code = $7::varchar,
          finished_at = now(), duration_ms = ${DURATION}
        FROM old WHERE t.id = old.id AND old.status = 'running'
        RETURNING t.id
      ), db AS (
        UPDATE control_plane.tenant_databases d SET
          last_error = $6::text,
          status = CASE WHEN run.kind = 'provision' THEN 'error'::control_plane.database_status
                        ELSE 'active'::control_plane.database_status END,
          schema_version = CASE WHEN $4::boolean THEN $5::varchar ELSE d.schema_version END
        FROM old, run WHERE d.id = old.tenant_database_id AND d.status = 'migrating'
          AND EXISTS (SELECT 1 FROM upd)
        RETURNING d.id
      )
      ${END_WAKE}
      ${END_TAIL}`,
  },

  // --- ADOPT dry runs: targets of unregistered schemas -------------------------------------------
  // A dry-run ADOPT run registers nothing: each target names a schema on a server instead of a
  // tenant database (migration 0011). The finish statements serve them unchanged (their tenant
  // and database updates match no row); only admitting and claiming them differ.
  // $1 run, $2 server, $3 schema names: one PENDING dry-run target per schema, in the given order.
  insertUnregisteredTargets: {
    name: 'run_insert_unregistered_targets',
    text: `
      WITH inserted AS (
        INSERT INTO control_plane.migration_run_targets (run_id, server_id, schema_name, position, canary, dry_run)
        SELECT $1::uuid, $2::uuid, s.name, (s.ord - 1)::int, false, true
          FROM unnest($3::text[]) WITH ORDINALITY AS s(name, ord)
        RETURNING 1
      )
      SELECT count(*)::int AS count FROM inserted`,
  },
  // $1 target. Marks a QUEUED (or re-delivered RUNNING) target of an unregistered schema RUNNING,
  // as claimTarget does for a tenant's (attempts, run start, counters), and returns the run, the
  // target and its server's sealed connection string. No server budget: a dry run reads only.
  claimUnregisteredTarget: {
    name: 'run_claim_unregistered_target',
    text: `
      WITH s AS (
        SELECT r.id, r.status AS run_status, t.status AS target_status
        FROM control_plane.migration_run_targets t
        JOIN control_plane.migration_runs r ON r.id = t.run_id
        WHERE t.id = $1::uuid AND t.tenant_database_id IS NULL
          AND (t.status = 'running' OR (t.status = 'queued' AND r.status IN ('queued', 'running')))
      ), r AS (
        UPDATE control_plane.migration_runs r SET ${CLAIM_RUN_UPDATE}
        FROM s WHERE r.id = s.id
        RETURNING r.*, s.run_status AS old_run_status
      ), t AS (
        UPDATE control_plane.migration_run_targets t SET
          status = 'running', attempts = t.attempts + 1, started_at = coalesce(t.started_at, now())
        FROM r WHERE t.id = $1::uuid AND t.run_id = r.id
        RETURNING t.*
      )
      SELECT ${runColumns('r', 'r_')}, ${targetColumns('t', 't_')},
        sv.connection_string_encrypted AS "serverSealed", r.old_run_status = 'queued' AS "runStarted"
      FROM r JOIN t ON t.run_id = r.id JOIN control_plane.database_servers sv ON sv.id = t.server_id`,
  },

  // --- settle: halt, admit, end ------------------------------------------------------------------
  // $1 run: its targets by status and canary flag (call with the run locked).
  countTargets: {
    name: 'run_count_targets',
    text: `SELECT upper(status::text) AS status, canary, count(*)::int AS n
      FROM control_plane.migration_run_targets WHERE run_id = $1::uuid GROUP BY status, canary`,
  },
  // $1 run, $2 halt, $3 admit non-canaries too, $4 how many to admit, $5..$10 counter deltas
  // (pending, running, succeeded, failed, skipped, cancelled), $11 status, $12 whether it ends now,
  // $13 a job that takes its next turn here (NULL: none), $14 the target that job just ended.
  // Of the admitted targets, the first on the ended target's server is held by that job (it
  // claims it next, under the server lock it holds already); `admitted` lists the others, each
  // to be enqueued as a job of its own (held by none until claimed).
  applyDecision: {
    name: 'run_apply_decision',
    text: `
      WITH halted AS (
        UPDATE control_plane.migration_run_targets SET status = 'skipped', finished_at = now()
        WHERE run_id = $1::uuid AND $2::boolean AND status IN ('pending', 'queued')
        RETURNING 1
      ), picked AS (
        SELECT id, position, tenant_database_id FROM control_plane.migration_run_targets
        WHERE run_id = $1::uuid AND status = 'pending' AND ($3::boolean OR canary)
        ORDER BY position
        LIMIT $4::int
        FOR UPDATE SKIP LOCKED
      ), turn AS (
        SELECT p.id FROM picked p JOIN control_plane.tenant_databases pd ON pd.id = p.tenant_database_id
        WHERE $13::uuid IS NOT NULL AND pd.server_id IS NOT DISTINCT FROM (
          SELECT d.server_id FROM control_plane.migration_run_targets x
          JOIN control_plane.tenant_databases d ON d.id = x.tenant_database_id WHERE x.id = $14::uuid)
        ORDER BY p.position LIMIT 1
      ), admitted AS (
        UPDATE control_plane.migration_run_targets t SET status = 'queued',
          job_id = CASE WHEN t.id IN (SELECT id FROM turn) THEN $13::uuid END
        FROM picked WHERE t.id = picked.id
        RETURNING t.id, t.position, t.job_id
      ), r AS (
        UPDATE control_plane.migration_runs r SET
          pending = r.pending + $5::int - (SELECT count(*)::int FROM halted),
          running = r.running + $6::int,
          succeeded = r.succeeded + $7::int,
          failed = r.failed + $8::int,
          skipped = r.skipped + $9::int + (SELECT count(*)::int FROM halted),
          cancelled = r.cancelled + $10::int,
          status = $11::text::control_plane.run_status,
          finished_at = CASE WHEN $12::boolean THEN now() ELSE r.finished_at END
        WHERE r.id = $1::uuid
        RETURNING r.*
      )
      SELECT ${runColumns('r')},
        ARRAY(SELECT id::text FROM admitted WHERE job_id IS NULL ORDER BY position) AS admitted
      FROM r`,
  },

  // --- cancel, retry ---------------------------------------------------------------------------
  // $1 run: CANCELLED, with every target that has not started; running ones finish.
  cancelRun: {
    name: 'run_cancel',
    text: `
      WITH targets AS (
        UPDATE control_plane.migration_run_targets SET status = 'cancelled', finished_at = now()
        WHERE run_id = $1::uuid AND status IN ('pending', 'queued')
      )
      UPDATE control_plane.migration_runs SET status = 'cancelled' WHERE id = $1::uuid`,
  },
  // $1 run: who holds the tenant databases of the run's targets a retry would reset (up to 10).
  retryBlockers: {
    name: 'run_retry_blockers',
    text: `SELECT n.name AS tenant, o.run_id::text AS "runId", count(*) OVER ()::int AS total
      FROM control_plane.migration_run_targets t
      JOIN control_plane.migration_run_targets o ON o.tenant_database_id = t.tenant_database_id
        AND o.run_id <> t.run_id AND o.status IN ${ACTIVE} AND NOT o.dry_run
      JOIN control_plane.tenants n ON n.tenant_id = t.tenant_id
      WHERE t.run_id = $1::uuid AND t.status IN ('failed', 'cancelled', 'skipped') AND NOT t.dry_run
      ORDER BY n.name LIMIT 10`,
  },
  // $1 run: FAILED, CANCELLED and SKIPPED targets back to PENDING, the run back to work.
  // SKIPPED targets of a halted run are work it left undone, so a retry takes them too.
  retryRun: {
    name: 'run_retry',
    text: `
      WITH reset AS (
        UPDATE control_plane.migration_run_targets SET
          status = 'pending', error = NULL, error_code = NULL, finished_at = NULL, duration_ms = NULL,
          deferred_at = NULL
        WHERE run_id = $1::uuid AND status IN ('failed', 'cancelled', 'skipped')
        RETURNING 1
      ), r AS (
        UPDATE control_plane.migration_runs SET
          status = CASE WHEN started_at IS NULL THEN 'queued' ELSE 'running' END::control_plane.run_status,
          finished_at = NULL
        WHERE id = $1::uuid AND EXISTS (SELECT 1 FROM reset)
        RETURNING 1
      )
      SELECT (SELECT count(*)::int FROM reset) AS reset`,
  },

  // --- reconcile -------------------------------------------------------------------------------
  // Runs that have not finished, whatever their status (a HALTED or CANCELLED run still ends
  // when its last running target does).
  unfinishedRuns: {
    name: 'run_unfinished',
    text: `SELECT id::text AS id FROM control_plane.migration_runs WHERE finished_at IS NULL ORDER BY created_at`,
  },
  // $1 run: the jobs that should exist for its targets in flight (QUEUED or RUNNING): the job
  // that holds each, or the target's own when none does yet.
  inFlightJobs: {
    name: 'run_in_flight_jobs',
    text: `SELECT coalesce(job_id, id)::text AS id FROM control_plane.migration_run_targets
      WHERE run_id = $1::uuid AND (status = 'running' OR (status = 'queued' AND deferred_at IS NULL))
      GROUP BY coalesce(job_id, id) ORDER BY min(position)`,
  },
  // Targets deferred for a server whose budget has room again (the budget grew, or a wake was
  // lost with a crashed process): woken, oldest first, at most the room of each server. Racing a
  // claim it may wake one too many, which is deferred again.
  wakeDeferred: {
    name: 'run_wake_deferred',
    text: `
      WITH room AS (
        SELECT s.id, s.max_concurrent_migrations - (
          SELECT count(*)::int FROM (${RUNNING_TARGETS}) x
          JOIN control_plane.tenant_databases xd ON xd.id = x.tenant_database_id
          WHERE xd.server_id = s.id) AS free
        FROM control_plane.database_servers s
      ), picked AS (
        SELECT p.id FROM room CROSS JOIN LATERAL (
          SELECT x.id FROM control_plane.migration_run_targets x
          JOIN control_plane.tenant_databases xd ON xd.id = x.tenant_database_id
          WHERE x.deferred_at IS NOT NULL AND x.status = 'queued' AND xd.server_id = room.id
          ORDER BY x.deferred_at LIMIT greatest(room.free, 0)
          FOR UPDATE OF x SKIP LOCKED) p
      )
      UPDATE control_plane.migration_run_targets w SET deferred_at = NULL
      FROM picked WHERE w.id = picked.id
      RETURNING w.id::text AS "targetId", w.run_id::text AS "runId"`,
  },
  // $1 target: QUEUED and not deferred (a deferral's job ended after a finish woke it).
  wokenTarget: {
    name: 'run_woken_target',
    text: `SELECT run_id::text AS "runId" FROM control_plane.migration_run_targets
      WHERE id = $1::uuid AND status = 'queued' AND deferred_at IS NULL`,
  },
  // $1 run, $2 job ids (as inFlightJobs names them): those that still hold a target in flight
  // (call with the run locked).
  stillInFlight: {
    name: 'run_still_in_flight',
    text: `SELECT coalesce(job_id, id)::text AS id FROM control_plane.migration_run_targets
      WHERE run_id = $1::uuid AND coalesce(job_id, id) = ANY($2::uuid[])
        AND (status = 'running' OR (status = 'queued' AND deferred_at IS NULL))
      GROUP BY coalesce(job_id, id) ORDER BY min(position)`,
  },
} as const;
