/**
 * A run machinery of its own for one test file: control-plane DB clone, Redis prefix, queue,
 * event bus, run service and (on demand) workers, all closed and cleaned up in afterAll (workers
 * after each test).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { RedisClient } from '../../../src/redis/connections.js';
import { composeServices } from '../../../src/composition.js';
import type { Composition, WorkerOptions } from '../../../src/composition.js';
import { loadConfig } from '../../../src/config.js';
import type { Config } from '../../../src/config.js';
import type { SecretBox } from '../../../src/crypto/secret-box.js';
import type { ControlPlaneDb, ControlPlanePool } from '../../../src/db/control-plane.js';
import type { TenantPools } from '../../../src/db/tenant-pools.js';
import { createLogger } from '../../../src/logger.js';
import type { MigrationCatalog } from '../../../src/migrations/index.js';
import type { RunEvent, RunEventBus } from '../../../src/pubsub/run-events.js';
import { queuePrefixOf } from '../../../src/queue/target-queue.js';
import type { TargetQueue } from '../../../src/queue/target-queue.js';
import type { TargetWorker } from '../../../src/queue/target-worker.js';
import { createRedisConnection, deleteKeys } from '../../../src/redis/connections.js';
import type { RunService } from '../../../src/runs/types.js';
import type { ServerService } from '../../../src/servers/server-service.js';
import { useTestDatabase } from '../../helpers/database.js';
import type { TestDatabase } from '../../helpers/database.js';

export const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/runs');
export const ACTOR = { name: 'test' };

export interface RunHarness {
  readonly database: TestDatabase;
  readonly config: Config;
  readonly db: ControlPlaneDb;
  readonly catalog: MigrationCatalog;
  readonly queue: TargetQueue;
  readonly events: RunEventBus;
  readonly service: RunService;
  /** The plain pg pool of the run machine's statements. */
  readonly pool: ControlPlanePool;
  readonly secretBox: SecretBox;
  readonly tenantPools: TenantPools;
  /** The database server registry (the `default` server is this file's database's). */
  readonly servers: ServerService;
  /** A plain Redis connection for inspection. */
  readonly redis: RedisClient;
  /** Environment for a child worker process with the same settings. */
  readonly env: Record<string, string>;
  /** The composition's API-side services. */
  services(): Composition['services'];
  startWorker(options?: WorkerOptions): Promise<TargetWorker>;
  /** Inserts ACTIVE tenants with one SCHEMA-isolated database each (schema not created). */
  createTenants(
    prefix: string,
    count: number,
    environment?: 'DEVELOPMENT' | 'STAGING' | 'PRODUCTION',
  ): Promise<string[]>;
  /** Collects every event of `runId` from now on. */
  recordEvents(runId: string): { readonly events: RunEvent[]; stop(): void };
}

/** Registers the hooks that build and tear down a harness over catalog `catalogName`. */
export function useRunHarness(catalogName = 'fleet', overrides: Record<string, string> = {}): RunHarness {
  const database = useTestDatabase({ controlPlane: true });
  const prefix = `t-${randomUUID()}`;
  const workers: TargetWorker[] = [];
  const subscriptions: { stop(): void }[] = [];
  let redis: RedisClient | undefined;
  let app: Composition | undefined;
  let state:
    | Omit<RunHarness, 'database' | 'startWorker' | 'createTenants' | 'recordEvents' | 'redis' | 'services'>
    | undefined;

  beforeAll(async () => {
    const env = {
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      TENANT_DATABASE_URL: database.url,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_PREFIX: prefix,
      MIGRATIONS_DIR: path.join(FIXTURES, catalogName),
      RECONCILE_INTERVAL_MS: '1000',
      WORKER_CONCURRENCY: '4',
      LOG_LEVEL: 'silent',
      ...overrides,
    };
    const config = loadConfig(env);
    // The same composition root as the service's processes.
    app = await composeServices(config, { logger: createLogger('silent'), name: 'test' });
    redis = createRedisConnection(config.redisUrl, 'test-inspect');
    state = {
      config,
      db: app.db,
      pool: app.pool,
      catalog: app.catalog,
      queue: app.queue,
      events: app.events,
      service: app.services.runs,
      secretBox: app.secretBox,
      tenantPools: app.tenantPools,
      servers: app.services.servers,
      env,
    };
  });

  // A test that failed half-way must not leave its worker taking the next test's jobs.
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.close()));
  });

  afterAll(async () => {
    for (const subscription of subscriptions) subscription.stop();
    await app?.close();
    if (redis) {
      await deleteKeys(redis, `${queuePrefixOf(prefix)}*`);
      await redis.quit();
    }
  });

  const ready = () => {
    if (!state) throw new Error('the run harness is ready from beforeAll on');
    return state;
  };

  return {
    database,
    get config() {
      return ready().config;
    },
    get db() {
      return ready().db;
    },
    get catalog() {
      return ready().catalog;
    },
    get queue() {
      return ready().queue;
    },
    get events() {
      return ready().events;
    },
    get service() {
      return ready().service;
    },
    get pool() {
      return ready().pool;
    },
    get secretBox() {
      return ready().secretBox;
    },
    get tenantPools() {
      return ready().tenantPools;
    },
    get servers() {
      return ready().servers;
    },
    get env() {
      return ready().env;
    },
    get redis() {
      if (!redis) throw new Error('the run harness is ready from beforeAll on');
      return redis;
    },
    services() {
      if (!app) throw new Error('the run harness is ready from beforeAll on');
      return app.services;
    },
    async startWorker(options = {}) {
      if (!app) throw new Error('the run harness is ready from beforeAll on');
      const worker = await app.startWorker(options);
      workers.push(worker);
      return worker;
    },
    async createTenants(namePrefix, count, environment = 'DEVELOPMENT') {
      const s = ready();
      const ids: string[] = [];
      for (let i = 0; i < count; i += 1) {
        const name = `${namePrefix}_${String(i).padStart(3, '0')}`;
        const databaseId = randomUUID();
        const tenant = await s.db.tenant.create({
          data: {
            name,
            environment,
            status: 'ACTIVE',
            databases: {
              create: {
                id: databaseId,
                connectionStringEncrypted: s.secretBox.sealConnectionString(databaseId, database.url),
                databaseName: database.name,
                host: '127.0.0.1',
                port: 5432,
                status: 'ACTIVE',
                isolation: 'SCHEMA',
                schemaName: `tenant_${name}`,
              },
            },
          },
        });
        ids.push(tenant.tenantId);
      }
      return ids;
    },
    recordEvents(runId) {
      const iterator = ready().events.subscribeRun(runId);
      const received: RunEvent[] = [];
      void (async () => {
        for await (const event of iterator) received.push(event);
      })();
      const subscription = { events: received, stop: () => void iterator.return?.() };
      subscriptions.push(subscription);
      return subscription;
    },
  };
}
