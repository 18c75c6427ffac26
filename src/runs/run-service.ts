/**
 * Starting, cancelling, retrying and stamping runs: the API's and the CLI's way into the run
 * machinery. Each mutation commits to the control-plane DB first, then hands work to the queue.
 */
import type { ReleaseCatalogs } from '../catalog-releases/release-catalogs.js';
import type { Config } from '../config.js';
import type { ControlPlaneDb, ControlPlanePool, ControlPlaneTx } from '../db/control-plane.js';
import { runColumns } from '../db/control-plane-rows.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { TenantPools } from '../db/tenant-pools.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { MigrationRun, Tenant } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import { UnknownVersionError, parseVersion, stampVersion } from '../migrations/index.js';
import type { MigrationCatalog } from '../migrations/index.js';
import { ledgerTargetOf } from '../migrations/ledger-target.js';
import type { RunEventBus } from '../pubsub/run-events.js';
import {
  admitFleetRun,
  admitRestoreRun,
  admitUnregisteredAdoptRun,
  cancelRun as cancelRunIn,
  retryRun as retryRunIn,
} from './run-machine.js';
import type { FleetSelection, NewFleetRun } from './run-machine.js';
import { createScheduler } from './scheduler.js';
import { RUN_STATEMENTS } from './sql/run-statements.js';
import type { TargetDispatch } from './target-dispatch.js';
import type {
  Actor,
  ProvisionRequest,
  RestoreRequest,
  RunService,
  StartMigrationRunRequest,
  StartAdoptRunRequest,
  StartRollbackRequest,
  StartVerifyRunRequest,
  TenantSelector,
} from './types.js';

export interface RunServiceDeps {
  readonly db: ControlPlaneDb;
  /** Plain pg connections to the control-plane DB, for the run machine's statements. */
  readonly pool: ControlPlanePool;
  readonly config: Pick<Config, 'defaultRunConcurrency' | 'lockTimeoutMs' | 'ledgerTable'>;
  /** The API's own catalog: stamping and rollbacks validate against it. */
  readonly catalog: MigrationCatalog;
  /** The releases a run may pin (default: the API's own). */
  readonly catalogs: Pick<ReleaseCatalogs, 'resolve' | 'local' | 'forRollback'>;
  readonly dispatch: Pick<TargetDispatch, 'enqueue'>;
  readonly events: RunEventBus;
  readonly tenantPools: TenantPools;
  readonly secretBox: SecretBox;
  readonly logger: Logger;
  /** Checks a backup's file before a restore run starts (bound to backups/ by the composition root). */
  readonly backups: BackupVerifier;
}

/** What a restore needs to know before it starts. */
export interface BackupVerifier {
  /** The backup, once its file is checked whole: NotFoundError, PreconditionFailedError otherwise. */
  verifyBackup(backupId: string): Promise<{ readonly tenantId: string; readonly tenantDatabaseId: string }>;
}

/** Reads of single runs for the API's hot path (see createRunReader). */
export interface RunReader {
  /** The run with this id as stored now, or null. */
  findRun(runId: string): Promise<MigrationRun | null>;
}

/**
 * Reads a run by primary key over a plain pg pool, as one named prepared statement, in the
 * Prisma client's shape. Progress polling asks for exactly this, often; through Prisma the read
 * cost ~0.3 ms more CPU than the query itself on a 2-vCPU VM, a third of such a request's work.
 */
export function createRunReader({ pool }: { pool: ControlPlanePool }): RunReader {
  async function findRun(runId: string): Promise<MigrationRun | null> {
    const result = await pool.query<MigrationRun>({ name: 'find_run', text: FIND_RUN, values: [runId] });
    return result.rows[0] ?? null;
  }
  return { findRun };
}

const FIND_RUN = `SELECT ${runColumns('r')} FROM control_plane.migration_runs r WHERE r.id = $1::uuid`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Most targets of one run in the window at once; more would only queue behind the workers. */
export const MAX_RUN_CONCURRENCY = 1000;

/** Creates the RunService over the given clients. */
export function createRunService(deps: RunServiceDeps): RunService {
  const { db, pool, config, catalog, catalogs, tenantPools, secretBox, logger } = deps;
  const scheduler = createScheduler(deps);

  async function startMigrationRun(request: StartMigrationRunRequest, actor: Actor): Promise<MigrationRun> {
    const release = await catalogs.resolve(request.catalogChecksum);
    const targetVersion = request.targetVersion ?? release.catalog.latest;
    if (!targetVersion) throw new ValidationError('The tenant catalog has no migrations', 'targetVersion');
    const file = release.catalog.find(targetVersion);
    if (!file) throw new ValidationError(`Unknown migration version "${targetVersion}"`, 'targetVersion');
    const concurrency = validateConcurrency(request.concurrency ?? config.defaultRunConcurrency);
    const canarySize = validatePositive(request.canarySize, 'canarySize');
    const maxFailures = validatePositive(request.maxFailures, 'maxFailures');
    const runId = await admitFleetRun(
      pool,
      {
        kind: 'MIGRATE',
        targetVersion: file.version,
        catalogReleaseId: release.releaseId,
        dryRun: request.dryRun ?? false,
        concurrency,
        canarySize,
        maxFailures,
        transactionMode: request.transactionMode ?? 'PER_TENANT',
        requestedBy: actor.name,
        allowDrift: request.allowDrift ?? false,
        backup: request.backup ?? false,
      },
      selectionOf(request.tenants),
    );
    await dispatch(runId);
    const run = await reload(runId);
    logger.info('migration run created', { runId, targets: run.total, targetVersion: file.version });
    return run;
  }

  async function startRollback(request: StartRollbackRequest, actor: Actor): Promise<MigrationRun> {
    const limit = parseVersion(request.targetVersion);
    if (limit === null) {
      throw new ValidationError(`Unknown migration version "${request.targetVersion}"`, 'targetVersion');
    }
    const concurrency = validateConcurrency(request.concurrency ?? config.defaultRunConcurrency);
    const runId = await admitFleetRun(
      pool,
      {
        kind: 'ROLLBACK',
        // Respelt as the release the check below pins spells it.
        targetVersion: request.targetVersion,
        // Replaced by the release the check chooses once the tenants' versions are known.
        catalogReleaseId: catalogs.local.releaseId,
        dryRun: false,
        concurrency,
        canarySize: null,
        maxFailures: null,
        transactionMode: 'PER_TENANT',
        requestedBy: actor.name,
        allowDrift: request.allowDrift ?? false,
        backup: request.backup ?? false,
      },
      selectionOf(request.tenants),
      // The release that holds the down files from every selected tenant's version to the target
      // (the API's own when it suffices); the worker re-checks against each tenant's ledger.
      async (versions) => {
        const release = await catalogs.forRollback(versions, limit);
        const target = limit === 0n ? null : release.catalog.files.find((file) => file.order === limit);
        return {
          catalogReleaseId: release.releaseId,
          targetVersion: target?.version ?? request.targetVersion,
        };
      },
    );
    await dispatch(runId);
    const run = await reload(runId);
    logger.info('rollback run created', { runId, targets: run.total, targetVersion: run.targetVersion });
    return run;
  }

  async function startVerifyRun(request: StartVerifyRunRequest, actor: Actor): Promise<MigrationRun> {
    const concurrency = validateConcurrency(request.concurrency ?? config.defaultRunConcurrency);
    const runId = await admitFleetRun(
      pool,
      {
        kind: 'VERIFY',
        targetVersion: null,
        // Read-only: as a dry run it neither waits for nor blocks the tenant's other runs.
        dryRun: true,
        concurrency,
        canarySize: null,
        maxFailures: null,
        transactionMode: 'PER_TENANT',
        requestedBy: actor.name,
        // Judged against the API's own release, as the runs of this process are.
        catalogReleaseId: catalogs.local.releaseId,
      },
      selectionOf(request.tenants),
    );
    await dispatch(runId);
    const run = await reload(runId);
    logger.info('verify run created', { runId, targets: run.total });
    return run;
  }

  async function startAdoptRun(request: StartAdoptRunRequest, actor: Actor): Promise<MigrationRun> {
    const concurrency = validateConcurrency(request.concurrency ?? config.defaultRunConcurrency);
    const run: NewFleetRun = {
      kind: 'ADOPT',
      targetVersion: null,
      dryRun: request.dryRun,
      concurrency,
      canarySize: null,
      maxFailures: null,
      transactionMode: 'PER_TENANT',
      catalogReleaseId: catalogs.local.releaseId,
      requestedBy: actor.name,
      adoptOptions: request.options,
    };
    const runId =
      'schemas' in request
        ? await admitUnregisteredAdoptRun(pool, run, request.schemas)
        : await admitFleetRun(pool, run, {
            ids: [...request.tenantIds],
            statuses: ['PENDING'],
            environments: null,
          });
    await dispatch(runId);
    const admitted = await reload(runId);
    logger.info('adopt run created', { runId, targets: admitted.total, dryRun: request.dryRun });
    return admitted;
  }

  async function startBackupRun(tenantId: string, actor: Actor): Promise<MigrationRun> {
    const runId = await admitFleetRun(
      pool,
      {
        kind: 'BACKUP',
        targetVersion: null,
        dryRun: false,
        concurrency: 1,
        canarySize: null,
        maxFailures: null,
        transactionMode: 'PER_TENANT',
        requestedBy: actor.name,
        catalogReleaseId: catalogs.local.releaseId,
      },
      { ids: [tenantId], statuses: ['ACTIVE', 'INACTIVE', 'SUSPENDED', 'PENDING'], environments: null },
    );
    await dispatch(runId);
    logger.info('backup run created', { runId, tenantId });
    return reload(runId);
  }

  async function startRestoreRun(request: RestoreRequest, actor: Actor): Promise<MigrationRun> {
    if (!UUID.test(request.backupId)) throw new NotFoundError(`No such backup: ${request.backupId}`);
    const known = await db.tenantBackup.findUnique({
      where: { id: request.backupId },
      include: { tenant: { select: { name: true } } },
    });
    if (!known || known.deletedAt) throw new NotFoundError(`No such backup: ${request.backupId}`);
    if (request.confirmName !== known.tenant.name) {
      throw new ValidationError('confirmName does not match the tenant name', 'confirmName');
    }
    // Before anything starts: a changed file is refused here, and again by the worker.
    const backup = await deps.backups.verifyBackup(request.backupId);
    const runId = await admitRestoreRun(pool, {
      tenantDatabaseId: backup.tenantDatabaseId,
      backupId: request.backupId,
      requestedBy: actor.name,
    });
    await dispatch(runId);
    logger.info('restore run created', { runId, backupId: request.backupId });
    return reload(runId);
  }

  async function cancelRun(runId: string, _actor: Actor): Promise<MigrationRun> {
    await scheduler.afterSettle(await cancelRunIn(pool, runId));
    logger.info('run cancelled', { runId });
    return reload(runId);
  }

  async function retryRun(runId: string, _actor: Actor): Promise<MigrationRun> {
    await scheduler.afterSettle(await retryRunIn(pool, runId));
    logger.info('run retried', { runId });
    return reload(runId);
  }

  async function stampTenant(tenantId: string, version: string, _actor: Actor): Promise<Tenant> {
    const tenant = await db.tenant.findFirst({
      where: { tenantId, deletedAt: null },
      include: { databases: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: 1 } },
    });
    const database = tenant?.databases[0];
    if (!tenant || !database) throw new NotFoundError(`No such tenant with a database: ${tenantId}`);
    const limit = parseVersion(version);
    if (limit === null || (limit !== 0n && !catalog.find(version))) {
      throw new ValidationError(`Unknown migration version "${version}"`, 'version');
    }
    const pool = tenantPools.poolFor(secretBox.openConnectionString(database));
    try {
      const result = await stampVersion(
        pool,
        ledgerTargetOf(database, config.ledgerTable),
        catalog,
        version,
        {
          lockTimeoutMs: config.lockTimeoutMs,
        },
      );
      await db.tenantDatabase.update({
        where: { id: database.id },
        data: { schemaVersion: result.toVersion },
      });
    } catch (error) {
      if (error instanceof UnknownVersionError)
        throw new ValidationError(error.message, 'version', { cause: error });
      throw error;
    }
    logger.info('tenant stamped', { tenantId, version });
    return db.tenant.findUniqueOrThrow({ where: { tenantId } });
  }

  async function createProvisionRun(
    tx: ControlPlaneTx,
    request: ProvisionRequest,
    actor: Actor,
  ): Promise<MigrationRun> {
    const database = await tx.tenantDatabase.findFirst({
      where: { id: request.tenantDatabaseId, tenantId: request.tenantId },
    });
    if (!database) throw new NotFoundError(`No such tenant database: ${request.tenantDatabaseId}`);
    // The statement tenant registration uses too, sent through the caller's transaction.
    const [row] = await tx.$queryRawUnsafe<{ id: string }[]>(
      RUN_STATEMENTS.insertProvisionRun.text,
      database.id,
      catalogs.local.catalog.latest,
      actor.name,
      // Pinned like every run: any worker applies the API's release, whatever its own disk holds.
      catalogs.local.releaseId,
    );
    return tx.migrationRun.findUniqueOrThrow({ where: { id: row!.id } });
  }

  async function dispatch(runId: string): Promise<void> {
    await scheduler.dispatchRun(runId);
  }

  async function reload(runId: string): Promise<MigrationRun> {
    return db.migrationRun.findUniqueOrThrow({ where: { id: runId } });
  }

  return {
    startMigrationRun,
    startRollback,
    startVerifyRun,
    startAdoptRun,
    startBackupRun,
    startRestoreRun,
    cancelRun,
    retryRun,
    stampTenant,
    createProvisionRun,
    dispatch,
  };
}

/** The tenants a selector covers: omitted statuses mean ACTIVE only. */
function selectionOf(selector: TenantSelector | null | undefined): FleetSelection {
  return {
    ids: selector?.ids ? [...selector.ids] : null,
    statuses: selector?.status?.length ? [...selector.status] : ['ACTIVE'],
    environments: selector?.environment?.length ? [...selector.environment] : null,
  };
}

function validateConcurrency(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_RUN_CONCURRENCY) {
    throw new ValidationError(
      `concurrency must be an integer from 1 to ${MAX_RUN_CONCURRENCY}`,
      'concurrency',
    );
  }
  return value;
}

function validatePositive(value: number | null | undefined, field: string): number | null {
  if (value === null || value === undefined) return null;
  if (!Number.isInteger(value) || value < 1)
    throw new ValidationError(`${field} must be an integer of at least 1`, field);
  return value;
}
