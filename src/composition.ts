/**
 * The one composition root: builds the clients and services that the API (app.ts), the worker,
 * the CLI and the test harnesses use, the same way for each, and closes them in reverse order.
 * Only here do the layers meet: the queue becomes the run machine's TargetDispatch, and the
 * tenants' provisioner the target processor's ProvisionTenant.
 */
import type { RedisClient } from './redis/connections.js';
import { createAuditLog, type AuditLog } from './audit/audit-log.js';
import { createReleaseCatalogs, type ReleaseCatalogs } from './catalog-releases/release-catalogs.js';
import { createLocalBackupStorage } from './backups/backup-storage.js';
import { createBackupService, type BackupService } from './backups/backup-service.js';
import { createTokenService, type TokenService } from './auth/tokens.js';
import type { Config } from './config.js';
import { createSecretBoxFromConfig, type SecretBox } from './crypto/secret-box.js';
import {
  createControlPlaneDb,
  createControlPlanePool,
  type ControlPlaneDb,
  type ControlPlanePool,
} from './db/control-plane.js';
import { createTenantPools, type TenantPools } from './db/tenant-pools.js';
import {
  createAdoptionService,
  createAdoptTarget,
  type AdoptionService,
} from './fingerprints/adoption-service.js';
import { createExpectedFingerprintStore } from './fingerprints/expected-fingerprint-store.js';
import {
  createExpectedFingerprintsOf,
  type ExpectedFingerprints,
} from './fingerprints/expected-fingerprints.js';
import {
  createFingerprintService,
  describeDifferences,
  type FingerprintService,
} from './fingerprints/fingerprint-service.js';
import type { SchemaFingerprint } from './fingerprints/schema-description.js';
import type { Logger } from './logger.js';
import { loadCatalog } from './migrations/index.js';
import type { MigrationCatalog } from './migrations/types.js';
import { createRunEventBus, type RunEventBus } from './pubsub/run-events.js';
import { createTokenRevocationBus, type TokenRevocationBus } from './pubsub/token-revocations.js';
import { createTargetQueue, queuePrefixOf, type TargetQueue } from './queue/target-queue.js';
import { startTargetWorker, type TargetWorker } from './queue/target-worker.js';
import { createRedisConnection, prepareSubscriber, subscriptionsLive } from './redis/connections.js';
import { wakeDeferredTargets } from './runs/run-machine.js';
import { createRunReader, createRunService, type RunReader } from './runs/run-service.js';
import { createServerService, type ServerService } from './servers/server-service.js';
import type { MoveFingerprints } from './runs/target-processor.js';
import type { RunService } from './runs/types.js';
import {
  createSystemConfigService,
  type SystemConfigService,
} from './system-config/system-config-service.js';
import { createDeploymentIdReader } from './tenants/deployment.js';
import { markOwnedSql, ownershipGuardSql } from './tenants/ownership.js';
import { provisionTenant } from './tenants/provisioner.js';
import { createProvisionTemplates } from './templates/provision-templates.js';
import { createSchemaTemplateStore } from './templates/template-store.js';
import { createTenantService, type TenantService } from './tenants/tenant-service.js';

// Each service statement on the plain pool is one short round trip; a few connections serve many requests.
const SERVICE_POOL_CONNECTIONS = 4;
// API reads of a tenant database are short ledger reads; a few connections per server bound what
// one busy console can take from a tenant server.
const TENANT_READ_CONNECTIONS = 3;

export interface CompositionOptions {
  readonly logger: Logger;
  /** Names this process's connections in Redis and pg_stat_activity (`api`, `cli`, `test`). */
  readonly name?: string;
  /** Connections of the Prisma client (default 10). */
  readonly dbConnections?: number;
}

export interface WorkerOptions {
  /** How long a job's lock lasts without renewal (tests shorten it); default BullMQ's. */
  readonly lockDurationMs?: number;
  readonly logger?: Logger;
}

/** Every client and service of a process, and how to start workers and close it all. */
export interface Composition {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: ControlPlaneDb;
  /** Plain pg connections for the run machine's and the tenant registration's statements. */
  readonly pool: ControlPlanePool;
  readonly catalog: MigrationCatalog;
  /** This process's release and the releases runs pin, cached by id. */
  readonly catalogs: ReleaseCatalogs;
  readonly events: RunEventBus;
  /** Announces revoked tokens to every API process, which end their streams. */
  readonly revocations: TokenRevocationBus;
  /** Resolves once every subscription started so far is live on the event bus. */
  readonly eventsReady: () => Promise<void>;
  /** The auto-pipelined connection events are published on (also usable for plain commands). */
  readonly publishClient: RedisClient;
  readonly queue: TargetQueue;
  readonly secretBox: SecretBox;
  readonly tenantPools: TenantPools;
  readonly services: {
    readonly tenants: TenantService;
    readonly systemConfig: SystemConfigService;
    readonly tokens: TokenService;
    readonly audit: AuditLog;
    readonly runs: RunService;
    readonly runReader: RunReader;
    readonly catalog: MigrationCatalog;
    readonly catalogs: ReleaseCatalogs;
    readonly servers: ServerService;
    readonly fingerprints: FingerprintService;
    readonly adoption: AdoptionService;
    readonly backups: BackupService;
  };
  /** Each catalog version's expected fingerprint, replayed once per catalog and server major. */
  readonly expectedFingerprints: ExpectedFingerprints;
  /** Starts a target worker with its own hot-path pool and Redis connection; closed by close(). */
  startWorker(options?: WorkerOptions): Promise<TargetWorker>;
  /** Registers something to close (before everything opened so far). */
  onClose(name: string, close: () => Promise<unknown>): void;
  /** Closes everything in reverse order of opening: workers, queue, Redis, pools, Prisma. */
  close(): Promise<void>;
}

/** Builds the clients and services for `config`; the control plane must be migrated already. */
export async function composeServices(config: Config, options: CompositionOptions): Promise<Composition> {
  const { logger } = options;
  const name = options.name ?? 'app';
  // Everything opened so far, closed in reverse on failure or close().
  const closers: { name: string; close: () => Promise<unknown> }[] = [];
  const onClose = (what: string, close: () => Promise<unknown>) => void closers.push({ name: what, close });
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) {
      try {
        await closer.close();
      } catch (error) {
        logger.error(`closing ${closer.name} failed`, { error });
      }
    }
  };

  try {
    const catalog = await loadCatalog(config.migrationsDir);
    for (const warning of catalog.warnings) logger.warn('catalog warning', { ...warning });
    const db = createControlPlaneDb(config.databaseUrl, {
      maxConnections: options.dbConnections ?? 10,
      logger,
    });
    onClose('control-plane db', () => db.$disconnect());
    // Connected before the first request, so that request does not pay for it (and a control
    // plane that cannot be reached fails the start, not a request).
    await db.$queryRaw`SELECT 1`;
    const tenantPools = createTenantPools({ maxPerServer: config.tenantPoolSize, logger });
    onClose('tenant pools', () => tenantPools.close());
    // The API reads tenant ledgers through pools of their own, never through the worker's.
    const readPools = createTenantPools({
      maxPerServer: TENANT_READ_CONNECTIONS,
      logger,
      statementTimeoutMs: config.tenantReadTimeoutMs,
      applicationName: `tenant-control-plane-${name}`,
    });
    onClose('tenant read pools', () => readPools.close());

    // Auto-pipelining batches the commands issued in one tick into one write; only for connections
    // that never block (BullMQ's worker connection must not pipeline: taskforcesh/bullmq#457).
    const redis = (role: string, autoPipelining = false): RedisClient => {
      const connection = createRedisConnection(config.redisUrl, `${config.redisPrefix}-${name}-${role}`, {
        autoPipelining,
      });
      connection.on('error', (error) => logger.warn('redis connection error', { connection: role, error }));
      onClose(`redis ${role}`, () => quit(connection));
      return connection;
    };
    const publishClient = redis('publish', true);
    const subscribeClient = redis('subscribe');
    const queueConnection = redis('queue', true);
    // Ready before the first subscription (see prepareSubscriber; a PING readies no cluster
    // client's subscriber connection).
    const eventsReadyChannel = `${config.redisPrefix}:events-ready`;
    await Promise.all([publishClient.ping(), prepareSubscriber(subscribeClient, eventsReadyChannel)]);
    const events = createRunEventBus({ publishClient, subscribeClient, prefix: config.redisPrefix });
    // Closers run last-registered first: this runs after the worker stops and before Redis quits.
    onClose('run events', () => events.flush());
    const revocations = createTokenRevocationBus({
      publishClient,
      subscribeClient,
      prefix: config.redisPrefix,
    });
    const eventsReady = () => subscriptionsLive(subscribeClient, eventsReadyChannel);
    const queue = createTargetQueue({
      connection: queueConnection,
      prefix: queuePrefixOf(config.redisPrefix),
      attempts: config.targetJobAttempts,
    });
    onClose('queue', () => queue.close());
    const secretBox = createSecretBoxFromConfig(config);
    // Opens connections only when used.
    const pool = createControlPlanePool(config.databaseUrl, {
      maxConnections: SERVICE_POOL_CONNECTIONS,
      applicationName: `tenant-control-plane-${name}`,
      logger,
    });
    onClose('control-plane pool', () => pool.end());
    // Every process publishes its own disk catalog (idempotent); runs pin a release, workers run it.
    const catalogs = await createReleaseCatalogs(pool, catalog);

    const servers = createServerService({
      db,
      pool,
      secretBox,
      logger,
      // A budget that grew lets waiting targets start now rather than at the next reconcile.
      wakeDeferred: async () => queue.enqueue(await wakeDeferredTargets(pool)),
    });
    // TENANT_DATABASE_URL's server is `default`; rows older than the registry move onto it.
    await servers.ensureDefaultServer(config.tenantDatabaseUrl, config.defaultServerBudget);

    const deploymentId = createDeploymentIdReader(db);
    const backups = createBackupService({
      db,
      storage: createLocalBackupStorage(config.backupDir),
      secretBox,
      tenantPools,
      deploymentId,
      config,
      logger,
    });
    const runs = createRunService({
      backups,
      db,
      pool,
      config,
      catalog,
      catalogs,
      dispatch: queue,
      events,
      tenantPools,
      secretBox,
      logger,
    });
    const expectedStore = createExpectedFingerprintStore(pool);
    // Per catalog: a worker compares each run's tenants with its pinned release's expected structures.
    const expectedFingerprintsOf = createExpectedFingerprintsOf(expectedStore, config.ledgerTable);
    const expectedFingerprints = expectedFingerprintsOf(catalog);
    // New tenants of long catalogs are made from the catalog's template (PROVISION_TEMPLATE).
    const templates = createProvisionTemplates({
      store: createSchemaTemplateStore(pool),
      expectedStore,
      config,
      logger,
    });
    const fingerprints = createFingerprintService({
      pool,
      expected: expectedFingerprints,
      expectedOf: expectedFingerprintsOf,
      tenantPoolOf: (database) => readPools.poolFor(secretBox.openConnectionString(database)),
      ledgerTable: config.ledgerTable,
    });
    const services = {
      tenants: createTenantService({
        db,
        controlPlanePool: pool,
        config,
        servers,
        queue,
        secretBox,
        tenantPools,
        readPools,
        catalog,
        catalogReleaseId: catalogs.local.releaseId,
        logger,
        backupBeforeDrop: async (database) => {
          await backups.backupIfPresent(database, { reason: 'before delete' });
        },
      }),
      systemConfig: createSystemConfigService({ db }),
      tokens: createTokenService({
        db,
        config,
        logger,
        // Every API process ends the token's open streams; a missed announcement is caught by their re-check.
        onRevoked: (tokenId) =>
          revocations.publish(tokenId).catch((error: unknown) => {
            logger.warn('could not announce a token revocation', { tokenId, error });
          }),
      }),
      audit: createAuditLog({ db, logger }),
      runs,
      runReader: createRunReader({ pool }),
      catalog,
      catalogs,
      servers,
      fingerprints,
      adoption: createAdoptionService({
        db,
        secretBox,
        poolFor: (connectionString) => readPools.poolFor(connectionString),
        startAdoptRun: (request, actor) => runs.startAdoptRun(request, actor),
      }),
      backups,
    };
    const adoptTarget = createAdoptTarget({
      catalog,
      expected: expectedFingerprints,
      fingerprints,
      lockTimeoutMs: config.lockTimeoutMs,
      ledgerTable: config.ledgerTable,
    });

    const moveFingerprints: MoveFingerprints<SchemaFingerprint> = {
      prepare: (tenantPool, runCatalog) => fingerprints.prepareExpected(tenantPool, runCatalog),
      readAfterCommit: (database) => fingerprints.readAfterCommit(database),
      read: (database, tenantPool) => fingerprints.readDatabase(database, tenantPool),
      compare: (tenantPool, fingerprint, version, runCatalog) =>
        fingerprints.recordable(tenantPool, fingerprint, version, runCatalog),
    };

    async function startWorker(workerOptions: WorkerOptions = {}): Promise<TargetWorker> {
      const connection = redis('worker');
      // A job holds at most one of these connections at a time; two spare for a slow release.
      const workerPool = createControlPlanePool(config.databaseUrl, {
        maxConnections: config.workerConcurrency + 2,
        applicationName: `tenant-control-plane-${name}-hot-path`,
        logger,
      });
      onClose('control-plane worker pool', () => workerPool.end());
      const worker = await startTargetWorker({
        pool: workerPool,
        config,
        catalogs,
        events,
        tenantPools,
        secretBox,
        queue,
        // Every schema or database this deployment provisions carries its ownership marker.
        provisionTenant: async (input) =>
          provisionTenant({
            ...input,
            deploymentId: await deploymentId(),
            ledgerTable: config.ledgerTable,
            templates,
          }),
        ownershipGuard: async (database) => ownershipGuardSql(database, await deploymentId()),
        // The worker reads structures through its own tenant pools, the one it migrated with.
        checkSchema: async ({ database, pool: tenantPool, version, catalog: runCatalog }) => {
          const check = await fingerprints.checkDatabase(database, {
            pool: tenantPool,
            version,
            catalog: runCatalog,
          });
          return { matchesExpected: check.matchesExpected, summary: describeDifferences(check.differences) };
        },
        // Read after each move (FINGERPRINT_AFTER_TARGET), recorded by the target's finish.
        moveFingerprints,
        // An adopted schema becomes this deployment's own: its marker lets later runs touch it.
        adoptSchema: async (input) => {
          const { database, location, pool: tenantPool, run } = input;
          const adopted = await adoptTarget({
            databaseId: database?.id ?? null,
            location,
            pool: tenantPool,
            run,
          });
          if (!run.dryRun && database) await tenantPool.query(markOwnedSql(database, await deploymentId()));
          return adopted;
        },
        backups,
        connection,
        logger: workerOptions.logger ?? logger,
        ...(workerOptions.lockDurationMs ? { lockDurationMs: workerOptions.lockDurationMs } : {}),
      });
      onClose('worker', () => worker.close());
      return worker;
    }

    return {
      config,
      logger,
      db,
      pool,
      catalog,
      catalogs,
      events,
      revocations,
      eventsReady,
      publishClient,
      queue,
      secretBox,
      tenantPools,
      services,
      expectedFingerprints,
      startWorker,
      onClose,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function quit(connection: RedisClient): Promise<void> {
  if (connection.status === 'end') return;
  try {
    await connection.quit();
  } catch {
    // A connection that never came up cannot be quit politely.
    connection.disconnect();
  }
}
