/**
 * deleteTenant(dropData) (issue 10 items 2 and 7): it marks the tenant deleted under the tenant's
 * advisory lock before anything is dropped, gives up after lock_timeout, finishes a half-done
 * delete when asked again, and drops only what this deployment created.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlanePool, type ControlPlanePool } from '../../../src/db/control-plane.js';
import { ConflictError, PreconditionFailedError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logger.js';
import { LEDGER_TABLE, advisoryLockKey } from '../../../src/migrations/index.js';
import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { ledgerTargetOf } from '../../../src/tenants/ledger-target.js';
import { provisionTenant } from '../../../src/tenants/provisioner.js';
import { createTenantService, type TenantService } from '../../../src/tenants/tenant-service.js';
import { useRunHarness } from '../runs/run-harness.js';

/** What `promise` rejected with; fails when it resolves. */
function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected an error');
    },
    (error: unknown) => error,
  );
}

describe('deleteTenant with dropData', () => {
  const h = useRunHarness('fleet', { LOCK_TIMEOUT_MS: '300' });
  let controlPlanePool: ControlPlanePool;
  let tenants: TenantService;

  beforeAll(() => {
    controlPlanePool = createControlPlanePool(h.config.databaseUrl, {
      maxConnections: 2,
      applicationName: 'test-tenant-deletion',
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

  // A registered tenant whose schema this deployment provisioned (or, with `provision: false`, not).
  async function tenantWithSchema(prefix: string, { provision = true } = {}) {
    const [tenantId] = await h.createTenants(prefix, 1);
    const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId: tenantId! } });
    if (provision) await provisionAgain(database);
    const tenant = await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenantId! } });
    return { tenant, database, schema: database.schemaName! };
  }

  async function provisionAgain(database: Parameters<typeof ledgerTargetOf>[0] & { adoptUnmarked: boolean }) {
    await provisionTenant({
      location: { isolation: 'SCHEMA', ...database },
      connectionString: h.database.url,
      pool: h.database.pool,
      catalog: h.catalog,
      deploymentId: await readDeploymentId(h.db),
    });
  }

  async function schemaExists(schema: string): Promise<boolean> {
    const result = await h.database.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    return result.rowCount === 1;
  }

  // A second session on the tenant database, as another worker or an application would hold one.
  async function withSession<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: h.database.url });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  it('waits for the tenant lock a migration holds, then gives up and changes nothing', async () => {
    const { tenant, database, schema } = await tenantWithSchema('del_locked');
    const key = advisoryLockKey(ledgerTargetOf(database, LEDGER_TABLE).lockKey);
    const error = await withSession(async (session) => {
      await session.query('SELECT pg_advisory_lock($1::bigint)', [key]);
      return rejection(
        tenants.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true }),
      );
    });
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect((error as Error).message).toMatch(/lock/);
    expect(await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenant.tenantId } })).toMatchObject({
      status: 'ACTIVE',
      deletedAt: null,
    });
    expect(await schemaExists(schema)).toBe(true);
  });

  it('leaves the tenant marked deleted when the drop fails, and a second delete finishes it', async () => {
    const { tenant, schema } = await tenantWithSchema('del_blocked');
    const first = await withSession(async (session) => {
      // An open transaction reading a tenant table: DROP SCHEMA must wait for it.
      await session.query(`BEGIN; LOCK TABLE ${schema}.items IN ACCESS SHARE MODE`);
      try {
        return await rejection(
          tenants.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true }),
        );
      } finally {
        await session.query('ROLLBACK');
      }
    });
    expect(first).toBeInstanceOf(PreconditionFailedError);
    expect((first as Error).message).toMatch(/delete it again/);
    const marked = await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenant.tenantId } });
    expect(marked).toMatchObject({ status: 'INACTIVE', deletedAt: expect.any(Date) });
    expect(await schemaExists(schema)).toBe(true);

    const again = await tenants.deleteTenant({
      id: tenant.tenantId,
      confirmName: tenant.name,
      dropData: true,
    });
    expect(again).toMatchObject({ status: 'INACTIVE', deletedAt: marked.deletedAt });
    expect(await schemaExists(schema)).toBe(false);
  }, 20_000);

  it('drops the schema again when it came back after the first delete', async () => {
    const { tenant, database, schema } = await tenantWithSchema('del_twice');
    await tenants.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true });
    expect(await schemaExists(schema)).toBe(false);
    // What a retried old run did before runs skipped deleted tenants: the schema is back.
    await provisionAgain(database);
    expect(await schemaExists(schema)).toBe(true);

    const again = await tenants.deleteTenant({
      id: tenant.tenantId,
      confirmName: tenant.name,
      dropData: true,
    });
    expect(again.deletedAt).toEqual(expect.any(Date));
    expect(await schemaExists(schema)).toBe(false);
    const row = await h.db.tenantDatabase.findUniqueOrThrow({ where: { id: database.id } });
    expect(row).toMatchObject({ status: 'INACTIVE', schemaVersion: null });
  });

  it('refuses to drop a schema this deployment did not create, and changes nothing', async () => {
    const { tenant, schema } = await tenantWithSchema('del_foreign', { provision: false });
    await h.database.pool.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.precious (id int)`);

    const error = await rejection(
      tenants.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true }),
    );
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toContain(`schema "${schema}"`);
    expect((error as Error).message).toMatch(/ownership marker/);
    expect(await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenant.tenantId } })).toMatchObject({
      status: 'ACTIVE',
      deletedAt: null,
    });
    const table = await h.database.pool.query('SELECT to_regclass($1) AS t', [`${schema}.precious`]);
    expect(table.rows[0]?.t).toBe(`${schema}.precious`);
  });

  it('drops the unmarked schema of a tenant registered before ownership markers existed', async () => {
    const { tenant, database, schema } = await tenantWithSchema('del_legacy', { provision: false });
    await h.db.tenantDatabase.update({ where: { id: database.id }, data: { adoptUnmarked: true } });
    await h.database.pool.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.items (id int)`);

    await tenants.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true });
    expect(await schemaExists(schema)).toBe(false);
  });

  it('marks a tenant whose schema was never created as deleted', async () => {
    const { tenant, schema } = await tenantWithSchema('del_never', { provision: false });
    const deleted = await tenants.deleteTenant({
      id: tenant.tenantId,
      confirmName: tenant.name,
      dropData: true,
    });
    expect(deleted).toMatchObject({ status: 'INACTIVE', deletedAt: expect.any(Date) });
    expect(await schemaExists(schema)).toBe(false);
  });
});
