/**
 * A target worker in a process of its own, for tests that kill a worker with SIGKILL. Reads the
 * same environment as the service; prints "ready" once it takes jobs.
 */
import { loadConfig } from '../../../src/config.js';
import { createSecretBoxFromConfig } from '../../../src/crypto/secret-box.js';
import { createControlPlaneDb, createControlPlanePool } from '../../../src/db/control-plane.js';
import { createTenantPools } from '../../../src/db/tenant-pools.js';
import { createLogger } from '../../../src/logger.js';
import { loadCatalog } from '../../../src/migrations/index.js';
import { createRunEventBus } from '../../../src/pubsub/run-events.js';
import { createTargetQueue, queuePrefixOf } from '../../../src/queue/target-queue.js';
import { startTargetWorker } from '../../../src/queue/target-worker.js';
import { createRedisConnection } from '../../../src/redis/connections.js';

const config = loadConfig();
const db = createControlPlaneDb(config.databaseUrl);
const catalog = await loadCatalog(config.migrationsDir);
const queue = createTargetQueue({
  connection: createRedisConnection(config.redisUrl, 'child-queue'),
  prefix: queuePrefixOf(config.redisPrefix),
});
const events = createRunEventBus({
  publishClient: createRedisConnection(config.redisUrl, 'child-publish'),
  subscribeClient: createRedisConnection(config.redisUrl, 'child-subscribe'),
  prefix: config.redisPrefix,
});
await startTargetWorker({
  db,
  controlPlanePool: createControlPlanePool(config.databaseUrl, {
    maxConnections: config.workerConcurrency + 2,
    applicationName: 'test-worker-process-hot-path',
  }),
  config,
  catalog,
  queue,
  events,
  tenantPools: createTenantPools({ maxPerServer: 10 }),
  secretBox: createSecretBoxFromConfig(config),
  connection: createRedisConnection(config.redisUrl, 'child-worker'),
  logger: createLogger(config.logLevel),
  lockDurationMs: Number(process.env.TEST_LOCK_DURATION_MS ?? 1000),
});
process.stdout.write('ready\n');
