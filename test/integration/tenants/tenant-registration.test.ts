import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlanePool, type ControlPlanePool } from '../../../src/db/control-plane.js';
import { ConflictError, ValidationError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logger.js';
import { registerTenant } from '../../../src/tenants/tenant-registration.js';
import {
  createTenantService,
  tenantLocation,
  type TenantService,
} from '../../../src/tenants/tenant-service.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { ledgerVersions, waitForRunEnd } from '../runs/run-assertions.js';

describe('registering a tenant', () => {
  const h = useRunHarness('irreversible');
  let pool: ControlPlanePool;
  let tenants: TenantService;

  beforeAll(() => {
    pool = createControlPlanePool(h.config.databaseUrl, { maxConnections: 2, applicationName: 'test' });
    tenants = createTenantService({
      db: h.db,
      controlPlanePool: pool,
      config: h.config,
      servers: h.servers,
      queue: h.queue,
      secretBox: h.secretBox,
      tenantPools: h.tenantPools,
      readPools: h.tenantPools,
      catalog: h.catalog,
      // As the composition root does: provisioning pins the process's own release.
      catalogReleaseId: h.services().catalogs.local.releaseId,
      logger: createLogger('silent'),
    });
  });
  afterAll(() => pool.end());

  // Everything createTenant may write, as counts.
  async function counts() {
    const [tenantRows, databases, runs, targets] = await Promise.all([
      h.db.tenant.count(),
      h.db.tenantDatabase.count(),
      h.db.migrationRun.count(),
      h.db.migrationRunTarget.count(),
    ]);
    return { tenantRows, databases, runs, targets };
  }

  it('writes the rows that createProvisionRun and a first dispatch write, and enqueues the target', async () => {
    const created = await tenants.createTenant({ name: 'reg-new', environment: 'STAGING' }, ACTOR);

    // The same tenant registered the way it was before: Prisma inserts, createProvisionRun, dispatch.
    const location = tenantLocation(h.config.tenantDatabaseUrl, 'reg-old', 'SCHEMA');
    const oldDatabaseId = randomUUID();
    const serverId = (await h.servers.defaultServer()).id;
    const old = await h.db.$transaction(async (tx) => {
      const tenant = await tx.tenant.create({
        data: { name: 'reg-old', environment: 'STAGING', status: 'PENDING' },
      });
      const database = await tx.tenantDatabase.create({
        data: {
          id: oldDatabaseId,
          tenantId: tenant.tenantId,
          isolation: location.isolation,
          host: location.host,
          port: location.port,
          databaseName: location.databaseName,
          schemaName: location.schemaName,
          status: 'INACTIVE',
          serverId,
          connectionStringEncrypted: h.secretBox.sealConnectionString(
            oldDatabaseId,
            location.connectionString,
          ),
        },
      });
      const run = await h.service.createProvisionRun(
        tx,
        { tenantId: tenant.tenantId, tenantDatabaseId: database.id },
        ACTOR,
      );
      return { tenant, run };
    });
    await h.service.dispatch(old.run.id);

    const read = async (tenantId: string, runId: string) => {
      const tenant = await h.db.tenant.findUniqueOrThrow({
        where: { tenantId },
        include: { databases: true },
      });
      const run = await h.db.migrationRun.findUniqueOrThrow({
        where: { id: runId },
        include: { targets: true },
      });
      return { tenant, run };
    };
    const fresh = await read(created.tenant.tenantId, created.provisioning.id);
    const before = await read(old.tenant.tenantId, old.run.id);
    const comparable = ({ tenant, run }: typeof fresh) => {
      const { tenantId: _t, name: _n, createdAt: _c, updatedAt: _u, databases, ...tenantFields } = tenant;
      const { id: _i, createdAt: _rc, updatedAt: _ru, targets, ...runFields } = run;
      return {
        tenantFields,
        databases: databases.map(
          ({
            id,
            tenantId: _dt,
            schemaName: _s,
            connectionStringEncrypted,
            createdAt: _dc,
            updatedAt: _du,
            ...rest
          }) => ({
            ...rest,
            connectsTo: h.secretBox.openConnectionString({ id, connectionStringEncrypted }),
          }),
        ),
        runFields,
        targets: targets.map(
          ({
            id: _ti,
            runId: _tr,
            tenantId: _tt,
            tenantDatabaseId: _td,
            createdAt: _tc,
            updatedAt: _tu,
            ...rest
          }) => rest,
        ),
      };
    };
    expect(comparable(fresh)).toEqual(comparable(before));
    expect(fresh.run.targets[0]).toMatchObject({ status: 'QUEUED', position: 0, canary: false });
    expect(fresh.run).toMatchObject({ kind: 'PROVISION', status: 'QUEUED', total: 1, pending: 1 });

    // What createTenant returned is what it stored.
    expect(created.tenant).toEqual(
      await h.db.tenant.findUniqueOrThrow({ where: { tenantId: created.tenant.tenantId } }),
    );
    expect(created.provisioning).toEqual(
      await h.db.migrationRun.findUniqueOrThrow({ where: { id: created.provisioning.id } }),
    );
    expect(await h.queue.queue.getJobState(fresh.run.targets[0]!.id)).toBe('waiting');
  });

  it('refuses a taken name with ConflictError and creates nothing', async () => {
    await tenants.createTenant({ name: 'reg-dup' }, ACTOR);
    const before = await counts();
    const error = await rejectionOf(tenants.createTenant({ name: 'reg-dup', isolation: 'DATABASE' }, ACTOR));
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toBe('Tenant "reg-dup" already exists');
    expect(await counts()).toEqual(before);
  });

  it('refuses a name whose schema is taken with ConflictError and creates nothing', async () => {
    await tenants.createTenant({ name: 'reg-loc' }, ACTOR);
    const before = await counts();
    // "reg_loc" is another name for the same schema, tenant_reg_loc.
    const error = await rejectionOf(tenants.createTenant({ name: 'reg_loc' }, ACTOR));
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toBe('Tenant "reg_loc" or its schema already exists');
    expect(await counts()).toEqual(before);
  });

  it('refuses a bad name with ValidationError and creates nothing', async () => {
    const before = await counts();
    for (const name of ['Upper', 'x; drop schema public', 'system_admin', '']) {
      expect(await rejectionOf(tenants.createTenant({ name }, ACTOR))).toBeInstanceOf(ValidationError);
    }
    expect(await counts()).toEqual(before);
  });

  it('provisions a tenant whose job was never enqueued (a crash after the insert) through the reconciler', async () => {
    const location = tenantLocation(h.config.tenantDatabaseUrl, 'reg-lost', 'SCHEMA');
    const tenantDatabaseId = randomUUID();
    const registered = await registerTenant(pool, {
      name: 'reg-lost',
      environment: 'DEVELOPMENT',
      isolation: location.isolation,
      host: location.host,
      port: location.port,
      databaseName: location.databaseName,
      schemaName: location.schemaName,
      tenantDatabaseId,
      serverId: (await h.servers.defaultServer()).id,
      connectionStringEncrypted: h.secretBox.sealConnectionString(
        tenantDatabaseId,
        location.connectionString,
      ),
      targetVersion: h.catalog.latest,
      catalogReleaseId: null,
      requestedBy: ACTOR.name,
    });
    const worker = await h.startWorker();
    try {
      expect((await waitForRunEnd(h.db, registered.provisioning.id)).status).toBe('SUCCEEDED');
      const tenant = await h.db.tenant.findUniqueOrThrow({
        where: { tenantId: registered.tenant.tenantId },
        include: { databases: true },
      });
      expect(tenant.status).toBe('ACTIVE');
      expect(tenant.databases[0]).toMatchObject({ status: 'ACTIVE', schemaVersion: h.catalog.latest });
      expect(await ledgerVersions(h.database.pool, 'tenant_reg_lost')).toEqual(
        h.catalog.files.map((file) => file.version),
      );
    } finally {
      await worker.close();
    }
  });
});

/** What `promise` rejected with; fails when it fulfils. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}
