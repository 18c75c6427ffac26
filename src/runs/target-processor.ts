/**
 * The work of one job, whichever worker picks it up: claim its target (mark it RUNNING), plan
 * from the tenant's ledger and apply (or provision, or roll back, or only plan for a dry run),
 * then record the outcome, the run's counters and the tenant's cached version in one
 * control-plane transaction, which may also claim the run's next target for the same job (a
 * lane: see run-machine.ts); the job then works that one, up to TARGET_BATCH_SIZE targets.
 * Each tenant still commits whole in its own transaction, and each target ends on its own.
 */
import type pg from 'pg';
import { databaseOf, type Config } from '../config.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { ControlPlanePool } from '../db/control-plane.js';
import type { TenantPools } from '../db/tenant-pools.js';
import { AppError } from '../errors.js';
import type { MigrationRun, MigrationRunTarget, TenantDatabase } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import {
  assertNoDrift,
  highestVersion,
  isTransientPgError,
  migrateDown,
  migrateUp,
  planUp,
  readLedger,
  renderPlanSql,
} from '../migrations/index.js';
import type {
  AfterCommitRead,
  AppliedStep,
  MigrateOptions,
  MigrateResult,
  MigrationCatalog,
  MigrationTarget,
  ReadAfterCommit,
} from '../migrations/index.js';
import { ledgerTargetOf, type TenantDatabaseLocation } from '../migrations/ledger-target.js';
import { RunEventType } from '../pubsub/run-events.js';
import type { RunEventBus } from '../pubsub/run-events.js';
import { TargetStatus } from './run-decisions.js';
import { buildRunEvent } from './run-events.js';
import {
  claimTarget,
  claimUnregisteredTarget,
  finishTarget,
  isWokenTarget,
  settleUnclaimed,
} from './run-machine.js';
import type {
  ClaimedTarget,
  ClaimedUnregisteredTarget,
  DeferredTarget,
  JobRef,
  TargetEnd,
  TargetFingerprint,
} from './run-machine.js';
import { createScheduler } from './scheduler.js';
import type { ReleaseCatalogs } from '../catalog-releases/release-catalogs.js';
import type { TargetDispatch, TargetJob } from './target-dispatch.js';
import { describeTargetError } from './target-error.js';
import type { TargetErrorRecord } from './target-error.js';

/**
 * Creates a tenant's schema or database with this deployment's ownership marker and applies the
 * whole catalog (the composition root binds tenants/provisioner.ts to the deployment id; the runs
 * module does not import tenants).
 */
export type ProvisionTenant = (input: {
  readonly location: {
    readonly isolation: 'SCHEMA' | 'DATABASE';
    readonly databaseName: string;
    readonly schemaName: string | null;
  };
  readonly connectionString: string;
  readonly pool: pg.Pool;
  readonly catalog: MigrationCatalog;
  readonly options?: Omit<MigrateOptions, 'toVersion'>;
}) => Promise<MigrateResult>;

/** How a tenant database's structure compares with its version's expected one. */
export interface SchemaCheck {
  /** Null when the version has no expected structure (not a catalog version). */
  readonly matchesExpected: boolean | null;
  /** The first differences, readable (`COLUMN_TYPE users.tenant_id expected … actual …`). */
  readonly summary: string;
}

/**
 * Reads a tenant database's structure (its fingerprint), compares it with the expected one of
 * `version` and records both on its row (the composition root binds fingerprints/ here).
 */
export type CheckSchema = (input: {
  readonly database: TenantDatabase;
  readonly pool: pg.Pool;
  readonly version: string | null;
  /** The run's pinned release: its expected structures are the ones compared with. */
  readonly catalog: MigrationCatalog;
}) => Promise<SchemaCheck>;

/**
 * The tenant's structure after a MIGRATE or ROLLBACK target's move (FINGERPRINT_AFTER_TARGET), for
 * its finish to record with the version (the composition root binds fingerprints/ here; `F` is
 * its fingerprint, opaque to runs/).
 */
export interface MoveFingerprints<F = unknown> {
  /**
   * Readies the comparison before the move touches the tenant: the expected structures are replayed
   * (once per process) before any tenant of the server has the move's objects, which a catalog that
   * looks objects up across schemas would otherwise find from the scratch schema.
   */
  prepare(pool: pg.Pool, catalog: MigrationCatalog): Promise<void>;
  /** The read sent after the move's COMMIT in its round trip (the one-trip path). */
  readAfterCommit(database: TenantDatabase): ReadAfterCommit<F>;
  /** The read on its own, after a careful move or a rollback. */
  read(database: TenantDatabase, pool: pg.Pool): Promise<F>;
  /**
   * The comparison with the expected structure of `version` in `catalog` (the run's pinned release,
   * not the worker's disk catalog), as the finish records it.
   */
  compare(
    pool: pg.Pool,
    fingerprint: F,
    version: string | null,
    catalog: MigrationCatalog,
  ): Promise<TargetFingerprint>;
}

/**
 * Adopts the existing schema of a tenant database for an ADOPT run: decides its version from the
 * run's history source and, unless a dry run, stamps our ledger (bound to fingerprints/ in the
 * composition root). Throws when the schema cannot be adopted, naming why.
 */
export type AdoptSchema = (input: {
  /** The tenant database registered for the schema; null for a dry run's unregistered schema. */
  readonly database: TenantDatabase | null;
  /** Where the schema is: the tenant database's, or the unregistered target's. */
  readonly location: TenantDatabaseLocation;
  readonly pool: pg.Pool;
  readonly run: MigrationRun;
}) => Promise<{ readonly version: string; readonly report: string }>;

/** A drifted tenant's MIGRATE or ROLLBACK target, refused before anything is applied. */
export class TenantDriftError extends AppError<'SCHEMA_DRIFT'> {
  constructor(readonly summary: string) {
    super('SCHEMA_DRIFT', `drift: ${summary}`);
  }
}

/**
 * Backups of tenant databases, for runs of kind BACKUP and RESTORE and for runs started with
 * `backup: true` (the composition root binds backups/backup-service.ts; runs does not import it).
 */
export interface TargetBackups {
  /** Dumps the tenant database into the backup storage and records it. */
  backupDatabase(
    database: TenantDatabase,
    request: { readonly reason: string; readonly runId: string },
  ): Promise<{ readonly schemaVersion: string | null }>;
  /** Restores a backup over its tenant database; the finish records the version. */
  restoreBackup(
    backupId: string,
    options: { readonly viaRun: true },
  ): Promise<{ readonly schemaVersion: string | null }>;
}

export interface TargetProcessorDeps {
  /** The control-plane connections for claiming and finishing targets (see run-machine.ts). */
  readonly pool: ControlPlanePool;
  readonly config: Pick<
    Config,
    'lockTimeoutMs' | 'fingerprintAfterTarget' | 'targetBatchSize' | 'ledgerTable'
  >;
  /** The catalog of the release each run pins: read from the control plane once per process, never from disk. */
  readonly catalogs: Pick<ReleaseCatalogs, 'forRelease'>;
  readonly events: RunEventBus;
  readonly tenantPools: TenantPools;
  readonly secretBox: SecretBox;
  readonly dispatch: Pick<TargetDispatch, 'enqueue'>;
  readonly provisionTenant: ProvisionTenant;
  /**
   * The statement that checks, under the tenant's lock, that this deployment owns the tenant's
   * schema (or database) before a migration touches it (tenants/ownership.ts, bound by the
   * composition root); none: no check.
   */
  readonly ownershipGuard?: (database: TenantDatabase) => Promise<string>;
  readonly checkSchema: CheckSchema;
  /** Read after each MIGRATE and ROLLBACK target's move when FINGERPRINT_AFTER_TARGET is on. */
  readonly moveFingerprints: MoveFingerprints;
  readonly adoptSchema: AdoptSchema;
  readonly backups: TargetBackups;
  readonly logger: Logger;
  /** True once the worker is shutting down: a job then takes no further targets. */
  readonly isStopping?: () => boolean;
}

/** One delivery of a target job. */
export interface TargetAttempt extends JobRef {
  /**
   * 1-based number of this delivery. A job takes further targets only on its first delivery,
   * so every target gets the whole `maxAttempts`: a retried delivery works the target it holds
   * (the one that failed) and ends with it.
   */
  readonly attempt: number;
  /** Deliveries allowed in all; a transient failure on the last one is recorded as FAILED. */
  readonly maxAttempts: number;
}

export const TargetOutcome = {
  SKIPPED: 'SKIPPED',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
  /** Its server's migration budget was spent: waits, QUEUED without a job, to be woken. */
  DEFERRED: 'DEFERRED',
} as const;
export type TargetOutcome = (typeof TargetOutcome)[keyof typeof TargetOutcome];

/** The target failed and was recorded FAILED: retrying the job cannot help. */
export class TargetFailedError extends AppError<'TARGET_FAILED'> {
  constructor(
    readonly targetId: string,
    readonly record: TargetErrorRecord,
    options?: ErrorOptions,
  ) {
    super('TARGET_FAILED', `Target ${targetId} failed: ${record.error}`, options);
  }
}

/** What the work on a tenant produced, for the target row. */
interface TargetResult {
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  readonly appliedVersions: readonly string[];
  readonly plannedSql: string | null;
  /** The structure read after the move, recorded with the version. */
  readonly fingerprint?: TargetFingerprint;
}

/** Creates `processTarget` over the given clients. */
export function createTargetProcessor(deps: TargetProcessorDeps) {
  const { pool: controlPlanePool, config, catalogs, events, tenantPools, secretBox, logger } = deps;
  const { provisionTenant, checkSchema, moveFingerprints, adoptSchema, backups } = deps;
  const scheduler = createScheduler(deps);

  /**
   * Processes one delivery of a target job: its target, then each next one the finishes hand it
   * (at most TARGET_BATCH_SIZE in all). Resolves with the last target's outcome; rethrows a
   * transient error so the queue retries (the retry works the target the job holds, the one that
   * failed; those before it stay finished); throws TargetFailedError when the last target it
   * worked was recorded FAILED.
   */
  async function processTarget(attempt: TargetAttempt): Promise<TargetOutcome> {
    const claimed = await claimTarget(controlPlanePool, attempt);
    if ('deferred' in claimed) {
      // Its server runs its budget already: the job ends here, freeing the worker slot; a
      // finish on that server (or the reconciler) enqueues the target again.
      return TargetOutcome.DEFERRED;
    }
    if ('unclaimed' in claimed) {
      // Only a dry-run ADOPT target names no tenant; the main claim leaves it to its own claim.
      // Such a job works that one target and takes no turns.
      const unregistered = claimed.picked
        ? await claimUnregisteredTarget(controlPlanePool, claimed.picked)
        : null;
      if (unregistered) {
        const worked = await workTarget(attempt, unregistered, () => false);
        if (worked.failure) throw worked.failure;
        return worked.outcome;
      }
      // A deleted tenant, an ended target, a run that stopped scheduling: end it if due.
      const settled = claimed.picked ? await settleUnclaimed(controlPlanePool, claimed.picked) : null;
      if (settled) await scheduler.afterSettle(settled);
      return TargetOutcome.SKIPPED;
    }
    // Only a first delivery takes turns (see TargetAttempt.attempt).
    let turnsLeft = attempt.attempt === 1 ? Math.max(1, config.targetBatchSize) - 1 : 0;
    let current: ClaimedTarget | DeferredTarget | null = claimed;
    let outcome: TargetOutcome = TargetOutcome.SKIPPED;
    let failure: TargetFailedError | null = null;
    // Asked when the finish is sent: a worker shutting down meanwhile finishes what it holds and
    // leaves the rest to the queue.
    const takeTurn = () => turnsLeft-- > 0 && !deps.isStopping?.();
    while (current && !('deferred' in current)) {
      const worked = await workTarget(attempt, current, takeTurn);
      outcome = worked.outcome;
      failure = worked.failure;
      // Deferred: the next target waits, QUEUED without a job, for its server's budget.
      current = worked.next;
    }
    if (failure) throw failure;
    return outcome;
  }

  /**
   * Works one claimed target and finishes it; when `takeTurn()` says so as it finishes, the
   * finish may claim the run's next target for this job (`next`).
   */
  async function workTarget(
    attempt: TargetAttempt,
    started: ClaimedTarget | ClaimedUnregisteredTarget,
    takeTurn: () => boolean,
  ): Promise<{
    outcome: TargetOutcome;
    failure: TargetFailedError | null;
    next: ClaimedTarget | DeferredTarget | null;
  }> {
    const { run, target } = started;
    const database = 'database' in started ? started.database : null;
    const log = logger.child({ runId: run.id, targetId: target.id, tenantId: target.tenantId });
    if (started.runStarted) events.publish(buildRunEvent(RunEventType.RUN_STARTED, started.run));
    events.publish(buildRunEvent(RunEventType.TARGET_STARTED, started.run, tenantDetails(target)));

    const applied: string[] = [];
    const onApplied = (step: AppliedStep) => {
      applied.push(step.version);
      events.publish(
        buildRunEvent(RunEventType.MIGRATION_APPLIED, run, {
          ...tenantDetails(target),
          version: step.version,
          message: `${step.version}_${step.name} ${run.kind === 'ROLLBACK' ? 'reverted' : 'applied'} in ${step.executionMs} ms`,
        }),
      );
    };

    let result: TargetResult;
    try {
      result =
        'database' in started
          ? await workOn(run, started.database, onApplied)
          : await adoptUnregistered(started);
    } catch (error) {
      const lastAttempt = attempt.attempt >= attempt.maxAttempts;
      if (isTransientPgError(error) && !lastAttempt) {
        log.warn('target hit a transient error; the queue retries it', { error, attempt: attempt.attempt });
        throw error;
      }
      const record = describeTargetError(error);
      log.warn('target failed', { error: record.error, errorCode: record.errorCode });
      const next = await finishFailed(attempt, target, run, database, record, applied, takeTurn);
      const failure = new TargetFailedError(target.id, record, { cause: error });
      return { outcome: TargetOutcome.FAILED, failure, next };
    }
    const next = await finishSucceeded(attempt, target, result, takeTurn());
    // Debug, not info: a fleet run would log thousands of lines the run record already holds.
    log.debug('target succeeded', { fromVersion: result.fromVersion, toVersion: result.toVersion });
    return { outcome: TargetOutcome.SUCCEEDED, failure: null, next };
  }

  async function workOn(
    run: MigrationRun,
    database: TenantDatabase,
    onApplied: (step: AppliedStep) => void,
  ): Promise<TargetResult> {
    // The pinned release, not this process's disk: an old worker runs a new release's files.
    const catalog = await catalogs.forRelease(run.catalogReleaseId);
    const connectionString = secretBox.openConnectionString(database);
    const pool = tenantPools.poolFor(connectionString);
    const mode = run.transactionMode;
    const lockTimeoutMs = config.lockTimeoutMs;
    if (run.kind === 'VERIFY') {
      // Read-only: a VERIFY run is a dry run, so it neither waits for nor blocks another run.
      const check = await checkSchema({ database, pool, version: database.schemaVersion, catalog });
      if (check.matchesExpected === false) throw new TenantDriftError(check.summary);
      const version = database.schemaVersion;
      return { fromVersion: version, toVersion: version, appliedVersions: [], plannedSql: null };
    }
    if (run.kind === 'ADOPT') {
      const adopted = await adoptSchema({ database, location: database, pool, run });
      return {
        fromVersion: null,
        toVersion: adopted.version,
        appliedVersions: [],
        plannedSql: adopted.report,
      };
    }
    if (run.kind === 'PROVISION') {
      const result = await provisionTenant({
        location: database,
        connectionString,
        pool,
        catalog,
        options: { mode, lockTimeoutMs, onApplied },
      });
      return { ...result, appliedVersions: result.steps.map((s) => s.version), plannedSql: null };
    }
    if (run.kind === 'BACKUP') {
      const backup = await backups.backupDatabase(database, { reason: 'manual', runId: run.id });
      return unchanged(backup.schemaVersion);
    }
    if (run.kind === 'RESTORE') {
      if (!run.backupId) throw new Error(`Restore run ${run.id} names no backup`);
      const restored = await backups.restoreBackup(run.backupId, { viaRun: true });
      return {
        fromVersion: database.schemaVersion,
        toVersion: restored.schemaVersion,
        appliedVersions: [],
        plannedSql: null,
      };
    }
    // The fingerprint read last (after a migration, a VERIFY or an ADOPT run) says the tenant drifted.
    if (database.fingerprintMatches === false && !run.allowDrift) {
      throw new TenantDriftError(driftSummaryOf(database));
    }
    // A failed backup fails the target before anything touched the tenant.
    if (run.backup && !run.dryRun) {
      await backups.backupDatabase(database, { reason: `before run ${run.id}`, runId: run.id });
    }
    // Only a migration or rollback runs under the ownership guard; a dry run changes nothing, so it
    // does not mark the schema either.
    const guardSql = deps.ownershipGuard && !run.dryRun ? await deps.ownershipGuard(database) : undefined;
    const target = { ...ledgerTargetOf(database, config.ledgerTable), ...(guardSql ? { guardSql } : {}) };
    if (run.kind === 'ROLLBACK') {
      const reading = await readyToFingerprint(database, pool, catalog);
      const result = await migrateDown(pool, target, catalog, {
        toVersion: run.targetVersion ?? '0',
        mode,
        lockTimeoutMs,
        onApplied,
      });
      const fingerprint = reading
        ? await fingerprintAfterMove(database, pool, catalog, result.toVersion)
        : undefined;
      return { ...moved(result), ...(fingerprint ? { fingerprint } : {}) };
    }
    if (run.dryRun) return planOnly(pool, target, run, catalog);
    const reading = await readyToFingerprint(database, pool, catalog);
    const result = await migrateUp(pool, target, catalog, {
      toVersion: run.targetVersion,
      mode,
      lockTimeoutMs,
      onApplied,
      // The cached version lets the engine try the whole move in one round trip, and the
      // fingerprint read rides in that round trip, after its COMMIT.
      expectedVersion: database.schemaVersion,
      ...(reading ? { readAfterCommit: moveFingerprints.readAfterCommit(database) } : {}),
    });
    const fingerprint = reading
      ? await fingerprintAfterMove(database, pool, catalog, result.toVersion, result.afterCommit)
      : undefined;
    return { ...moved(result), ...(fingerprint ? { fingerprint } : {}) };
  }

  /**
   * Whether to read the tenant's structure after its move (FINGERPRINT_AFTER_TARGET), its
   * comparison readied first. A failure to ready it skips the read (logged): the move goes on.
   */
  async function readyToFingerprint(
    database: TenantDatabase,
    pool: pg.Pool,
    catalog: MigrationCatalog,
  ): Promise<boolean> {
    if (!config.fingerprintAfterTarget) return false;
    try {
      await moveFingerprints.prepare(pool, catalog);
      return true;
    } catch (error) {
      logger.warn('could not ready the fingerprint of a move', { tenantDatabaseId: database.id, error });
      return false;
    }
  }

  /**
   * The tenant's structure after its committed move, compared with its version's expected one in
   * the run's pinned release (`catalog`), for the finish to record: the read that rode after the
   * COMMIT, or (careful path, rollback) a read of its own. The move has committed, so a failure here only leaves the last fingerprint
   * in place (logged); the next VERIFY run reads it again.
   */
  async function fingerprintAfterMove(
    database: TenantDatabase,
    pool: pg.Pool,
    catalog: MigrationCatalog,
    version: string | null,
    afterCommit?: AfterCommitRead<unknown>,
  ): Promise<TargetFingerprint | undefined> {
    try {
      if (afterCommit && !afterCommit.ok) throw afterCommit.error;
      const read = afterCommit ? afterCommit.value : await moveFingerprints.read(database, pool);
      return await moveFingerprints.compare(pool, read, version, catalog);
    } catch (error) {
      logger.warn('could not record the fingerprint after a move', { tenantDatabaseId: database.id, error });
      return undefined;
    }
  }

  async function planOnly(
    pool: Parameters<typeof readLedger>[0],
    target: MigrationTarget,
    run: MigrationRun,
    catalog: MigrationCatalog,
  ): Promise<TargetResult> {
    const plan = planUp(catalog, await readLedger(pool, target), run.targetVersion);
    assertNoDrift(plan, target.schema);
    return {
      fromVersion: plan.fromVersion,
      toVersion: plan.toVersion,
      appliedVersions: [],
      plannedSql: renderPlanSql(plan, { schema: target.schema, mode: run.transactionMode }),
    };
  }

  /** A dry-run ADOPT target of an unregistered schema: what adoption would do, on the schema's server. */
  async function adoptUnregistered(claimed: ClaimedUnregisteredTarget): Promise<TargetResult> {
    const connectionString = secretBox.openConnectionString(claimed.server);
    const adopted = await adoptSchema({
      database: null,
      location: { databaseName: databaseOf(connectionString), schemaName: claimed.schemaName },
      pool: tenantPools.poolFor(connectionString),
      run: claimed.run,
    });
    return { fromVersion: null, toVersion: adopted.version, appliedVersions: [], plannedSql: adopted.report };
  }

  async function finishSucceeded(
    job: JobRef,
    target: MigrationRunTarget,
    result: TargetResult,
    nextTurn: boolean,
  ): Promise<ClaimedTarget | DeferredTarget | null> {
    const end: TargetEnd = { status: TargetStatus.SUCCEEDED, ...result };
    const settled = await finishTarget(controlPlanePool, job, target.id, end, nextTurn);
    if (!settled) return null;
    events.publish(
      buildRunEvent(RunEventType.TARGET_SUCCEEDED, settled.run, {
        ...tenantDetails(target),
        version: result.toVersion,
      }),
    );
    await scheduler.afterSettle(settled);
    return settled.next;
  }

  async function finishFailed(
    job: JobRef,
    target: MigrationRunTarget,
    run: MigrationRun,
    database: TenantDatabase | null,
    record: TargetErrorRecord,
    applied: readonly string[],
    takeTurn: () => boolean,
  ): Promise<ClaimedTarget | DeferredTarget | null> {
    // PER_MIGRATION and no-transaction files may have committed part of the way: cache what the ledger says.
    const reached = run.dryRun || !database ? undefined : await readReachedVersion(database);
    const end: TargetEnd = {
      status: TargetStatus.FAILED,
      appliedVersions: applied,
      reached,
      error: record.error,
      errorCode: record.errorCode,
    };
    const settled = await finishTarget(controlPlanePool, job, target.id, end, takeTurn());
    if (!settled) return null;
    events.publish(
      buildRunEvent(RunEventType.TARGET_FAILED, settled.run, {
        ...tenantDetails(target),
        message: record.error,
      }),
    );
    await scheduler.afterSettle(settled);
    return settled.next;
  }

  async function readReachedVersion(database: TenantDatabase): Promise<string | null | undefined> {
    try {
      const pool = tenantPools.poolFor(secretBox.openConnectionString(database));
      return highestVersion(await readLedger(pool, ledgerTargetOf(database, config.ledgerTable)));
    } catch (error) {
      // The tenant server may be the thing that failed; the cached version then stays as it was.
      logger.warn('could not read the ledger after a failure', { tenantDatabaseId: database.id, error });
      return undefined;
    }
  }

  /**
   * Call once a DEFERRED job has ended (left the queue): a finish that woke the target while
   * that job was still active could not add its job (same id), so it is added here.
   */
  async function redispatchIfWoken(job: TargetJob): Promise<void> {
    if (await isWokenTarget(controlPlanePool, job.targetId)) await deps.dispatch.enqueue([job]);
  }

  return { processTarget, redispatchIfWoken };
}
export type TargetProcessor = ReturnType<typeof createTargetProcessor>;

/** The stored differences of a drifted tenant database, as one line. */
function driftSummaryOf(database: TenantDatabase): string {
  const differences = Array.isArray(database.fingerprintDifferences)
    ? (database.fingerprintDifferences as { kind: string; object: string }[])
    : [];
  const first = differences.slice(0, 3).map((d) => `${d.kind} ${d.object}`);
  return first.length > 0
    ? `${first.join('; ')}${differences.length > 3 ? '; …' : ''} (allowDrift: true migrates it anyway)`
    : 'its structure differs from its version (allowDrift: true migrates it anyway)';
}

function moved(result: MigrateResult): TargetResult {
  const { fromVersion, toVersion, steps } = result;
  return { fromVersion, toVersion, appliedVersions: steps.map((s) => s.version), plannedSql: null };
}

function unchanged(version: string | null): TargetResult {
  return { fromVersion: version, toVersion: version, appliedVersions: [], plannedSql: null };
}

function tenantDetails(target: MigrationRunTarget) {
  return { tenantId: target.tenantId, targetId: target.id };
}
