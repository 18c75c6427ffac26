import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAuditPruner } from './audit/audit-retention.js';
import { startBackupPruner } from './backups/backup-retention.js';
import { startControlPlaneUpkeep } from './db/control-plane-upkeep.js';
import { composeServices } from './composition.js';
import type { Config } from './config.js';
import type { ControlPlaneDb } from './db/control-plane.js';
import type { GraphqlServices } from './graphql/context.js';
import type { GraphqlYoga } from './graphql/server.js';
import { createLogger, type Logger } from './logger.js';
import { migrateControlPlane } from './migrations/index.js';
import type { MigrationCatalog } from './migrations/types.js';
import type { RunEventBus } from './pubsub/run-events.js';
import type { TargetWorker } from './queue/target-worker.js';
import { ensureDefaultTenantDatabase } from './servers/default-tenant-database.js';

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
  const app = await composeServices(config, { logger, name: 'api' });
  // Not a condition of starting: a tenant server that is down fails only its own targets.
  const defaultDatabase = await ensureDefaultTenantDatabase(config.tenantDatabaseUrl, logger);
  app.onClose('default tenant database', () => defaultDatabase.stop());
  // Every role: the run statements of workers and the API's writes both leave dead rows.
  const upkeep = startControlPlaneUpkeep({
    databaseUrl: config.databaseUrl,
    intervalMs: config.controlPlaneVacuumIntervalMs,
    logger,
  });
  app.onClose('control-plane upkeep', () => upkeep.stop());
  const { db, catalog, events, services } = app;

  try {
    let worker: TargetWorker | undefined;
    if (options.roles.worker) {
      worker = await app.startWorker({
        lockDurationMs: options.lockDurationMs ?? config.workerLockDurationMs,
      });
      // Workers write the backup files, so they remove the expired ones.
      const backupPruner = startBackupPruner({ backups: services.backups, config, logger });
      app.onClose('backup pruner', () => backupPruner.stop());
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
        eventsReady: app.eventsReady,
        redis: app.publishClient,
        revocations: app.revocations,
        logger,
      });
      yoga = graphql.yoga;
      server = graphql.server;
      app.onClose('http server', () => graphql.close());
      // The API writes the audit log, so it keeps it within AUDIT_RETENTION_DAYS.
      const pruner = startAuditPruner({ db, config, logger });
      app.onClose('audit pruner', () => pruner.stop());
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

    return { server, yoga, db, catalog, events, services, worker, listen, close: app.close };
  } catch (error) {
    await app.close();
    throw error;
  }
}
