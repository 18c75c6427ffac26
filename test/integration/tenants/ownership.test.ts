/**
 * Two control-plane deployments (two control-plane databases) sharing one tenant server (issue 10
 * item 7): the second can neither take over nor drop what the first provisioned, and a prefix of
 * its own keeps same-named tenants apart.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { RedisClient } from '../../../src/redis/connections.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, withDatabase, type Config } from '../../../src/config.js';
import {
  createControlPlaneDb,
  createControlPlanePool,
  type ControlPlaneDb,
  type ControlPlanePool,
} from '../../../src/db/control-plane.js';
import { quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { createTenantPools, type TenantPools } from '../../../src/db/tenant-pools.js';
import { ConflictError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logger.js';
import { createTargetQueue, queuePrefixOf, type TargetQueue } from '../../../src/queue/target-queue.js';
import { createRedisConnection } from '../../../src/redis/connections.js';
import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { ownershipMarker } from '../../../src/tenants/ownership.js';
import { provisionTenant } from '../../../src/tenants/provisioner.js';
import { createServerService } from '../../../src/servers/server-service.js';
import { createTenantService, type TenantService } from '../../../src/tenants/tenant-service.js';
import { useTestDatabase } from '../../helpers/database.js';
import { testServerUrl } from '../../helpers/template.js';
import { waitForRunEnd } from '../runs/run-assertions.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';

describe('two deployments on one tenant server', () => {
  // Deployment A: the run harness (control plane, queue, worker) on its own tenant database.
  const h = useRunHarness('fleet');
  // Deployment B: another control-plane database, the same tenant server and tenant database.
  const otherControlPlane = useTestDatabase({ controlPlane: true });
  const suffix = randomBytes(3).toString('hex');
  const createdDatabases: string[] = [];
  const redisPrefix = `t-${randomUUID()}`;
  const closers: (() => Promise<unknown>)[] = [];
  let a: TenantService;
  let b: TenantService;
  let bPrefixed: TenantService;
  let bConfig: Config;
  let bDb: ControlPlaneDb;
  let bTenantPools: TenantPools;

  beforeAll(async () => {
    const logger = createLogger('silent');
    const pool = (url: string): ControlPlanePool => {
      const created = createControlPlanePool(url, { maxConnections: 2, applicationName: 'test-ownership' });
      closers.push(() => created.end());
      return created;
    };
    a = createTenantService({
      db: h.db,
      controlPlanePool: pool(h.config.databaseUrl),
      config: h.config,
      servers: h.servers,
      queue: h.queue,
      secretBox: h.secretBox,
      tenantPools: h.tenantPools,
      readPools: h.tenantPools,
      catalog: h.catalog,
      logger,
    });
    bConfig = loadConfig({ ...h.env, DATABASE_URL: otherControlPlane.url, REDIS_PREFIX: redisPrefix });
    bDb = createControlPlaneDb(bConfig.databaseUrl, { maxConnections: 4 });
    bTenantPools = createTenantPools({ maxPerServer: 4 });
    const redis: RedisClient = createRedisConnection(bConfig.redisUrl, 'test-ownership');
    const bQueue: TargetQueue = createTargetQueue({ connection: redis, prefix: queuePrefixOf(redisPrefix) });
    closers.push(async () => {
      await bQueue.close();
      const keys = await redis.keys(`${queuePrefixOf(redisPrefix)}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    });
    closers.push(
      () => bTenantPools.close(),
      () => bDb.$disconnect(),
    );
    // B registers its own `default` server (the same tenant server), as its start would.
    const bServers = createServerService({
      db: bDb,
      pool: pool(bConfig.databaseUrl),
      secretBox: h.secretBox,
      logger,
    });
    await bServers.ensureDefaultServer(bConfig.tenantDatabaseUrl);
    const bDeps = {
      servers: bServers,
      db: bDb,
      controlPlanePool: pool(bConfig.databaseUrl),
      queue: bQueue,
      secretBox: h.secretBox,
      tenantPools: bTenantPools,
      readPools: bTenantPools,
      catalog: h.catalog,
      logger,
    };
    b = createTenantService({ ...bDeps, config: bConfig });
    bPrefixed = createTenantService({
      ...bDeps,
      config: loadConfig({ ...h.env, DATABASE_URL: otherControlPlane.url, TENANT_OBJECT_PREFIX: 'b_' }),
    });
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await withConnection(testServerUrl(), async (client) => {
      for (const name of createdDatabases) {
        await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(name)} WITH (FORCE)`);
      }
    });
  });

  async function databaseMarker(name: string): Promise<string | null | undefined> {
    const result = await h.database.pool.query<{ marker: string | null }>(
      `SELECT shobj_description(oid, 'pg_database') AS marker FROM pg_database WHERE datname = $1`,
      [name],
    );
    return result.rows[0]?.marker;
  }

  async function tablesOf(database: string): Promise<string[]> {
    return withConnection(withDatabase(h.database.url, database), async (client) => {
      const result = await client.query<{ t: string }>(
        `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
      );
      return result.rows.map((row) => row.t);
    });
  }

  // Deployment A creates a DATABASE tenant and its worker provisions it.
  async function createdByA(name: string): Promise<string> {
    const database = `tenant_${name}`;
    createdDatabases.push(database);
    const worker = await h.startWorker();
    try {
      const { provisioning } = await a.createTenant({ name, isolation: 'DATABASE' }, ACTOR);
      expect((await waitForRunEnd(h.db, provisioning.id)).status).toBe('SUCCEEDED');
    } finally {
      await worker.close();
    }
    expect(await databaseMarker(database)).toBe(ownershipMarker(await readDeploymentId(h.db)));
    return database;
  }

  it("keeps the second deployment from taking over or dropping the first one's database", async () => {
    const name = `own_${suffix}`;
    const database = await createdByA(name);
    const tables = await tablesOf(database);
    expect(tables).toContain('items');

    // Registering the same name finds the database on the server: refused, nothing registered.
    const refused = await b.createTenant({ name, isolation: 'DATABASE' }, ACTOR).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as Error).message).toContain(`database named "${database}" already exists`);
    expect(await bDb.tenant.count({ where: { name } })).toBe(0);

    // A row of B that points at it anyway (both registered before either provisioned).
    const connectionString = withDatabase(h.database.url, database);
    const tenantDatabaseId = randomUUID();
    const tenant = await bDb.tenant.create({
      data: {
        name,
        status: 'PENDING',
        databases: {
          create: {
            id: tenantDatabaseId,
            connectionStringEncrypted: h.secretBox.sealConnectionString(tenantDatabaseId, connectionString),
            databaseName: database,
            host: '127.0.0.1',
            port: 5432,
            isolation: 'DATABASE',
          },
        },
      },
      include: { databases: true },
    });
    const provisioning = await provisionTenant({
      location: tenant.databases[0]!,
      connectionString,
      pool: bTenantPools.poolFor(connectionString),
      catalog: h.catalog,
      deploymentId: await readDeploymentId(bDb),
    }).catch((e: unknown) => e);
    expect(provisioning).toBeInstanceOf(ConflictError);
    expect((provisioning as Error).message).toContain(await readDeploymentId(h.db));

    const dropped = await b
      .deleteTenant({ id: tenant.tenantId, confirmName: name, dropData: true })
      .catch((e: unknown) => e);
    expect(dropped).toBeInstanceOf(ConflictError);
    expect(await bDb.tenant.findUniqueOrThrow({ where: { tenantId: tenant.tenantId } })).toMatchObject({
      deletedAt: null,
    });
    expect(await databaseMarker(database)).toBe(ownershipMarker(await readDeploymentId(h.db)));
    expect(await tablesOf(database)).toEqual(tables);
  });

  it('gives a same-named tenant of a deployment with its own prefix a database of its own', async () => {
    const name = `pre_${suffix}`;
    const database = await createdByA(name);
    createdDatabases.push(`b_${name}`);
    const { tenant } = await bPrefixed.createTenant({ name, isolation: 'DATABASE' }, ACTOR);
    const row = await bDb.tenantDatabase.findFirstOrThrow({ where: { tenantId: tenant.tenantId } });
    expect(row.databaseName).toBe(`b_${name}`);
    const connectionString = h.secretBox.openConnectionString(row);
    await provisionTenant({
      location: row,
      connectionString,
      pool: bTenantPools.poolFor(connectionString),
      catalog: h.catalog,
      deploymentId: await readDeploymentId(bDb),
    });
    expect(await databaseMarker(`b_${name}`)).toBe(ownershipMarker(await readDeploymentId(bDb)));
    expect(await databaseMarker(database)).toBe(ownershipMarker(await readDeploymentId(h.db)));
    expect(await readDeploymentId(bDb)).not.toBe(await readDeploymentId(h.db));
  });

  it('refuses to register a tenant whose schema already exists, and registers nothing', async () => {
    const name = `sq_${suffix}`;
    await h.database.pool.query(`CREATE SCHEMA tenant_${name}`);
    const runsBefore = await h.db.migrationRun.count();
    const error = await a.createTenant({ name }, ACTOR).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toContain(`schema named "tenant_${name}" already exists`);
    expect(await h.db.tenant.count({ where: { name } })).toBe(0);
    expect(await h.db.migrationRun.count()).toBe(runsBefore);
  });
});
