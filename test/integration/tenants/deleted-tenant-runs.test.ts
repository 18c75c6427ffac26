/**
 * Runs never bring a deleted tenant back (issue 10 item 2): a target of a tenant marked deleted is
 * SKIPPED when a worker claims it, with the reason, and nothing is created on the tenant server.
 * Both failed before the run state machine (the retried target SUCCEEDED and recreated the
 * schema; the provisioning set the tenant ACTIVE).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlanePool, type ControlPlanePool } from '../../../src/db/control-plane.js';
import { createLogger } from '../../../src/logger.js';
import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { provisionTenant } from '../../../src/tenants/provisioner.js';
import { createTenantService, type TenantService } from '../../../src/tenants/tenant-service.js';
import { waitForRunEnd } from '../runs/run-assertions.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';

describe('runs of a deleted tenant', () => {
  const h = useRunHarness('fleet');
  let controlPlanePool: ControlPlanePool;
  let tenants: TenantService;

  beforeAll(() => {
    controlPlanePool = createControlPlanePool(h.config.databaseUrl, {
      maxConnections: 2,
      applicationName: 'test-deleted-tenant-runs',
    });
    tenants = createTenantService({
      db: h.db,
      controlPlanePool,
      config: h.config,
      servers: h.servers,
      queue: h.queue,
      secretBox: h.secretBox,
      tenantPools: h.tenantPools,
      readPools: h.tenantPools,
      catalog: h.catalog,
      logger: createLogger('silent'),
    });
  });

  afterAll(async () => {
    await controlPlanePool?.end();
  });

  async function schemaExists(schema: string): Promise<boolean> {
    const result = await h.database.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    return result.rowCount === 1;
  }

  async function expectStillDeleted(tenantId: string, runId: string, schema: string): Promise<void> {
    const run = await waitForRunEnd(h.db, runId);
    const targets = await h.db.migrationRunTarget.findMany({ where: { runId } });
    expect(targets).toEqual([
      expect.objectContaining({ status: 'SKIPPED', error: expect.stringMatching(/deleted/) }),
    ]);
    expect(run.status).not.toBe('RUNNING');
    const tenant = await h.db.tenant.findUniqueOrThrow({ where: { tenantId }, include: { databases: true } });
    expect(tenant).toMatchObject({ status: 'INACTIVE', deletedAt: expect.any(Date) });
    expect(tenant.databases[0]!.status).toBe('INACTIVE');
    expect(await schemaExists(schema)).toBe(false);
  }

  it('skips a retried MIGRATE target of a tenant deleted since, and does not recreate its schema', async () => {
    const [tenantId] = await h.createTenants('gone', 1);
    const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId: tenantId! } });
    await provisionTenant({
      location: database,
      connectionString: h.database.url,
      pool: h.database.pool,
      catalog: h.catalog,
      deploymentId: await readDeploymentId(h.db),
    });
    const run = await h.service.startMigrationRun({ tenants: { ids: [tenantId!] } }, ACTOR);
    await h.service.cancelRun(run.id, ACTOR);
    await waitForRunEnd(h.db, run.id);
    const tenant = await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenantId! } });
    await tenants.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true });
    expect(await schemaExists(database.schemaName!)).toBe(false);

    await h.startWorker();
    await h.service.retryRun(run.id, ACTOR);
    await expectStillDeleted(tenantId!, run.id, database.schemaName!);
  });

  it('skips a retried PROVISION target of a tenant deleted since, leaving it deleted', async () => {
    const { tenant, provisioning } = await tenants.createTenant({ name: 'gone-early' }, ACTOR);
    await h.service.cancelRun(provisioning.id, ACTOR);
    await waitForRunEnd(h.db, provisioning.id);
    await tenants.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true });

    await h.startWorker();
    await h.service.retryRun(provisioning.id, ACTOR);
    await expectStillDeleted(tenant.tenantId, provisioning.id, 'tenant_gone_early');
  });
});
