import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { createAuditLog } from './audit/audit-log.js';
import { startAuditPruner } from './audit/audit-retention.js';
import { createTokenService } from './auth/tokens.js';
import type { Config } from './config.js';
import { createSecretBoxFromConfig } from './crypto/secret-box.js';
import { createControlPlaneDb, createControlPlanePool, type ControlPlaneDb } from './db/control-plane.js';
import { createTenantPools } from './db/tenant-pools.js';
import type { GraphqlServices } from './graphql/context.js';
import type { GraphqlYoga } from './graphql/server.js';
import { createLogger, type Logger } from './logger.js';
import { ensureDatabase, loadCatalog, migrateControlPlane } from './migrations/index.js';
import type { MigrationCatalog } from './migrations/types.js';
import { createRunEventBus, type RunEventBus } from './pubsub/run-events.js';
import { createTokenRevocationBus } from './pubsub/token-revocations.js';
import { createTargetQueue, queuePrefixOf } from './queue/target-queue.js';
import { startTargetWorker, type TargetWorker } from './queue/target-worker.js';
import { createRedisConnection } from './redis/connections.js';
import { createRunReader, createRunService } from './runs/run-service.js';
import { createSystemConfigService } from './system-config/system-config-service.js';
import { createTenantService } from './tenants/tenant-service.js';

// Each API statement on the plain pool is one short round trip; a few connections serve many requests.
const API_POOL_CONNECTIONS = 4;
// API reads of a tenant database are short ledger reads; a few connections per server bound what
// one busy console can take from a tenant server.
const API_TENANT_READ_CONNECTIONS = 3;

export interface AppOptions {
  /** `api` serves HTTP/WebSocket; `worker` runs tenant jobs and the reconciler. */
  readonly roles: { readonly api: boolean; readonly worker: boolean };
  readonly logger?: Logger;
  /** Passed to the worker (tests shorten it). */
  readonly lockDurationMs?: number;
}

export interface App {
  /** The HTTP server, when the api role runs. */
  readonly server?: Server;
  /** The GraphQL handler; tests call `yoga.fetch`. */
  /** The GraphQL server; present with the api role. */
  readonly yoga?: GraphqlYoga;
  readonly db: ControlPlaneDb;
  readonly catalog: MigrationCatalog;
  readonly events: RunEventBus;
  readonly services: GraphqlServices;
  readonly worker?: TargetWorker;
  /** Starts listening (api role); resolves with the bound port. */
  listen(port?: number): Promise<number>;
  /** Closes everything in order: http/ws, worker, queue, Redis, tenant pools, Prisma. */
  close(): Promise<void>;
}

/** Wires clients and services for the given roles; migrates the control plane first. */
export async function createApp(config: Config, options: AppOptions): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  await migrateControlPlane(config.databaseUrl, config.controlPlaneMigrationsDir);
  await ensureDatabase(config.tenantDatabaseUrl);
  const catalog = await loadCatalog(config.migrationsDir);
  for (const warning of catalog.warnings) logger.warn('catalog warning', { ...warning });

  // Everything opened so far, closed in reverse on failure or close().
  const closers: { name: string; close: () => Promise<unknown> }[] = [];
  const closeAll = async () => {
    for (const { name, close } of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        logger.error(`closing ${name} failed`, { error });
      }
    }
  };

  try {
    const db = createControlPlaneDb(config.databaseUrl, { logger });
    closers.push({ name: 'control-plane db', close: () => db.$disconnect() });
    const tenantPools = createTenantPools({ maxPerServer: config.tenantPoolSize, logger });
    closers.push({ name: 'tenant pools', close: () => tenantPools.close() });
    // The API reads tenant ledgers through pools of its own, never through the worker's.
    const tenantReadPools = createTenantPools({
      maxPerServer: API_TENANT_READ_CONNECTIONS,
      logger,
      statementTimeoutMs: config.tenantReadTimeoutMs,
      applicationName: 'tenant-control-plane-api',
    });
    closers.push({ name: 'tenant read pools', close: () => tenantReadPools.close() });

    // Auto-pipelining batches the commands issued in one tick into one write; only for connections
    // that never block (BullMQ's worker connection must not pipeline: taskforcesh/bullmq#457).
    const redis = (name: string, autoPipelining = false): Redis => {
      const connection = createRedisConnection(config.redisUrl, `${config.redisPrefix}-${name}`, {
        autoPipelining,
      });
      connection.on('error', (error) => logger.warn('redis connection error', { connection: name, error }));
      closers.push({ name: `redis ${name}`, close: () => quit(connection) });
      return connection;
    };
    const publishClient = redis('publish', true);
    const subscribeClient = redis('subscribe');
    const queueConnection = redis('queue', true);
    // Ready before the first subscription: a SUBSCRIBE queued while the subscriber connection is
    // still connecting can overtake ioredis's ready check, which then fails in subscriber mode.
    await Promise.all([publishClient.ping(), subscribeClient.ping()]);
    const events = createRunEventBus({ publishClient, subscribeClient, prefix: config.redisPrefix });
    const revocations = createTokenRevocationBus({
      publishClient,
      subscribeClient,
      prefix: config.redisPrefix,
    });
    // Commands on one connection run in order: once a PING answers, every SUBSCRIBE sent before it is live.
    const eventsReady = async () => {
      await subscribeClient.ping();
    };

    const queue = createTargetQueue({
      connection: queueConnection,
      prefix: queuePrefixOf(config.redisPrefix),
    });
    closers.push({ name: 'queue', close: () => queue.close() });
    const secretBox = createSecretBoxFromConfig(config);
    const runs = createRunService({ db, config, catalog, queue, events, tenantPools, secretBox, logger });
    // For the API's hot statements (registering a tenant, reading a run); opens connections only when used.
    const apiPool = createControlPlanePool(config.databaseUrl, {
      maxConnections: API_POOL_CONNECTIONS,
      applicationName: 'tenant-control-plane-api',
      logger,
    });
    closers.push({ name: 'control-plane api pool', close: () => apiPool.end() });
    const services: GraphqlServices = {
      tenants: createTenantService({
        db,
        controlPlanePool: apiPool,
        config,
        queue,
        secretBox,
        tenantPools,
        readPools: tenantReadPools,
        catalog,
        logger,
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
      runReader: createRunReader({ pool: apiPool }),
      catalog,
    };

    let worker: TargetWorker | undefined;
    if (options.roles.worker) {
      const workerConnection = redis('worker');
      // A job holds at most one of these connections at a time; two spare for a slow release.
      const controlPlanePool = createControlPlanePool(config.databaseUrl, {
        maxConnections: config.workerConcurrency + 2,
        applicationName: 'tenant-control-plane-hot-path',
        logger,
      });
      closers.push({ name: 'control-plane pool', close: () => controlPlanePool.end() });
      worker = await startTargetWorker({
        db,
        controlPlanePool,
        config,
        catalog,
        events,
        tenantPools,
        secretBox,
        queue,
        connection: workerConnection,
        logger,
        lockDurationMs: options.lockDurationMs ?? config.workerLockDurationMs,
      });
      const started = worker;
      closers.push({ name: 'worker', close: () => started.close() });
    }

    let yoga: GraphqlYoga | undefined;
    let server: Server | undefined;
    if (options.roles.api) {
      // Imported only for the api role: a worker-only process never loads the GraphQL stack,
      // which keeps tens of MB of code out of its memory.
      const { createGraphqlServer } = await import('./graphql/server.js');
      const graphql = createGraphqlServer({
        config,
        db,
        services,
        events,
        eventsReady,
        redis: publishClient,
        revocations,
        logger,
      });
      yoga = graphql.yoga;
      server = graphql.server;
      closers.push({ name: 'http server', close: () => graphql.close() });
      // The API writes the audit log, so it keeps it within AUDIT_RETENTION_DAYS.
      const pruner = startAuditPruner({ db, config, logger });
      closers.push({ name: 'audit pruner', close: () => pruner.stop() });
    }

    async function listen(port = config.port): Promise<number> {
      if (!server) throw new Error('listen() needs the api role');
      const http = server;
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, config.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
      return (http.address() as AddressInfo).port;
    }

    return { server, yoga, db, catalog, events, services, worker, listen, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function quit(connection: Redis): Promise<void> {
  if (connection.status === 'end') return;
  try {
    await connection.quit();
  } catch {
    // A connection that never came up cannot be quit politely.
    connection.disconnect();
  }
}
