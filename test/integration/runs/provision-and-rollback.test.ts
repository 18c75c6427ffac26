import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { withDatabase } from '../../../src/config.js';
import { quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { NotFoundError, PreconditionFailedError } from '../../../src/errors.js';
import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { ownershipMarker } from '../../../src/tenants/ownership.js';
import { testServerUrl } from '../../helpers/template.js';
import { ACTOR, useRunHarness } from './run-harness.js';
import { ledgerVersions, waitForRunEnd } from './run-assertions.js';

describe('provisioning runs and irreversible rollbacks', () => {
  const h = useRunHarness('irreversible');
  const createdDatabases: string[] = [];

  async function insertPendingTenant(name: string, isolation: 'SCHEMA' | 'DATABASE') {
    const databaseName =
      isolation === 'SCHEMA' ? h.database.name : `cpt_tenantdb_${randomBytes(4).toString('hex')}`;
    if (isolation === 'DATABASE') createdDatabases.push(databaseName);
    const connection = isolation === 'SCHEMA' ? h.database.url : withDatabase(h.database.url, databaseName);
    const databaseId = randomUUID();
    return h.db.$transaction(async (tx) => {
      const tenant = await tx.tenant.create({
        data: {
          name,
          status: 'PENDING',
          databases: {
            create: {
              id: databaseId,
              connectionStringEncrypted: h.secretBox.sealConnectionString(databaseId, connection),
              databaseName,
              host: '127.0.0.1',
              port: 5432,
              status: 'INACTIVE',
              isolation,
              schemaName: isolation === 'SCHEMA' ? `tenant_${name}` : null,
            },
          },
        },
        include: { databases: true },
      });
      const run = await h.service.createProvisionRun(
        tx,
        { tenantId: tenant.tenantId, tenantDatabaseId: tenant.databases[0]!.id },
        ACTOR,
      );
      return { tenant, run, connection };
    });
  }

  it('provisions a SCHEMA and a DATABASE tenant to ACTIVE at the latest version', async () => {
    const worker = await h.startWorker();
    try {
      const schemaTenant = await insertPendingTenant('prov_schema', 'SCHEMA');
      const databaseTenant = await insertPendingTenant('prov_db', 'DATABASE');
      expect(schemaTenant.run).toMatchObject({ kind: 'PROVISION', total: 1, targetVersion: '0003' });
      await h.service.dispatch(schemaTenant.run.id);
      await h.service.dispatch(databaseTenant.run.id);
      await h.service.dispatch(databaseTenant.run.id);

      for (const { tenant, run } of [schemaTenant, databaseTenant]) {
        expect((await waitForRunEnd(h.db, run.id)).status).toBe('SUCCEEDED');
        const after = await h.db.tenant.findUniqueOrThrow({
          where: { tenantId: tenant.tenantId },
          include: { databases: true },
        });
        expect(after.status).toBe('ACTIVE');
        expect(after.databases[0]).toMatchObject({
          status: 'ACTIVE',
          schemaVersion: '0003',
          lastError: null,
        });
      }
      expect(await ledgerVersions(h.database.pool, 'tenant_prov_schema')).toEqual(['0001', '0002', '0003']);
      const pool = h.tenantPools.poolFor(databaseTenant.connection);
      expect(await ledgerVersions(pool, 'public')).toEqual(['0001', '0002', '0003']);
    } finally {
      await worker.close();
      for (const database of createdDatabases) {
        await withConnection(testServerUrl(), (client) =>
          client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(database)} WITH (FORCE)`),
        );
      }
    }
  });

  it('refuses a rollback across a migration without a down file and changes nothing', async () => {
    const ids = await h.createTenants('irrev', 2);
    const worker = await h.startWorker();
    const run = await h.service.startMigrationRun({ tenants: { ids } }, ACTOR);
    expect((await waitForRunEnd(h.db, run.id)).status).toBe('SUCCEEDED');
    await worker.close();
    const runsBefore = await h.db.migrationRun.count();

    await expect(
      h.service.startRollback({ targetVersion: '0001', tenants: { ids } }, ACTOR),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await h.db.migrationRun.count()).toBe(runsBefore);
    for (const name of ['irrev_000', 'irrev_001']) {
      expect(await ledgerVersions(h.database.pool, `tenant_${name}`)).toEqual(['0001', '0002', '0003']);
    }
  });

  it('leaves a tenant whose provisioning failed PENDING with the error, and a retry finishes it', async () => {
    // This deployment's own schema (its marker) with a table in the catalog's way.
    const marker = ownershipMarker(await readDeploymentId(h.db));
    await h.database.pool.query(
      `CREATE SCHEMA tenant_prov_bad; COMMENT ON SCHEMA tenant_prov_bad IS '${marker}';
       CREATE TABLE tenant_prov_bad.items (id int)`,
    );
    const worker = await h.startWorker();
    try {
      const { tenant, run } = await insertPendingTenant('prov_bad', 'SCHEMA');
      await h.service.dispatch(run.id);
      expect((await waitForRunEnd(h.db, run.id)).status).toBe('FAILED');
      const failed = await h.db.tenant.findUniqueOrThrow({
        where: { tenantId: tenant.tenantId },
        include: { databases: true },
      });
      expect(failed.status).toBe('PENDING');
      expect(failed.databases[0]!.status).toBe('ERROR');
      expect(failed.databases[0]!.lastError).toContain('42P07');

      await h.database.pool.query('DROP TABLE tenant_prov_bad.items');
      await h.service.retryRun(run.id, { name: 'test' });
      expect((await waitForRunEnd(h.db, run.id)).status).toBe('SUCCEEDED');
      const fixed = await h.db.tenant.findUniqueOrThrow({
        where: { tenantId: tenant.tenantId },
        include: { databases: true },
      });
      expect(fixed.status).toBe('ACTIVE');
      expect(fixed.databases[0]).toMatchObject({ status: 'ACTIVE', schemaVersion: '0003', lastError: null });
    } finally {
      await worker.close();
    }
  });

  it('stamps a tenant ledger and its cached version without running SQL', async () => {
    const [id] = await h.createTenants('stamped', 1);
    const tenant = await h.service.stampTenant(id!, '0002', ACTOR);
    expect(tenant.tenantId).toBe(id);
    expect(await ledgerVersions(h.database.pool, 'tenant_stamped_000')).toEqual(['0001', '0002']);
    const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId: id! } });
    expect(database.schemaVersion).toBe('0002');
    await expect(h.service.stampTenant(id!, '0042', ACTOR)).rejects.toMatchObject({ field: 'version' });
    await expect(
      h.service.stampTenant('00000000-0000-0000-0000-000000000000', '0001', ACTOR),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});
