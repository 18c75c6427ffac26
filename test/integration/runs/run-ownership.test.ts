/**
 * A migration never touches a schema this deployment did not create (issue 10 item 7): the
 * ownership marker is checked in the round trip that opens the tenant's transaction.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { ACTOR, useRunHarness } from './run-harness.js';
import { ledgerVersions, waitForRunEnd } from './run-assertions.js';

describe('runs and ownership markers', () => {
  const h = useRunHarness('fleet');

  async function schemaOf(tenantId: string): Promise<string> {
    const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId } });
    return database.schemaName!;
  }

  it("fails a target whose schema carries another deployment's marker, applying nothing", async () => {
    const [mine, theirs] = await h.createTenants('owner', 2);
    const foreign = await schemaOf(theirs!);
    await h.database.pool.query(`CREATE SCHEMA ${foreign}`);
    await h.database.pool.query(`CREATE TABLE ${foreign}.their_data (id int)`);
    await h.database.pool.query(
      `COMMENT ON SCHEMA ${foreign} IS 'tenant-control-plane deployment ${randomUUID()}'`,
    );
    const worker = await h.startWorker();
    const run = await h.service.startMigrationRun({ tenants: { ids: [mine!, theirs!] } }, ACTOR);
    await waitForRunEnd(h.db, run.id);
    await worker.close();

    const targets = await h.db.migrationRunTarget.findMany({ where: { runId: run.id } });
    const byTenant = new Map(targets.map((target) => [target.tenantId, target]));
    expect(byTenant.get(mine!)).toMatchObject({ status: 'SUCCEEDED' });
    expect(byTenant.get(theirs!)).toMatchObject({
      status: 'FAILED',
      error: expect.stringMatching(/another control-plane deployment/),
    });
    expect(await ledgerVersions(h.database.pool, foreign)).toEqual([]);
    const tables = await h.database.pool.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1`, [
      foreign,
    ]);
    expect(tables.rows).toEqual([{ tablename: 'their_data' }]);
  });

  it('marks the schemas it migrates as its own, so a later run recognises them', async () => {
    const [id] = await h.createTenants('marked', 1);
    const worker = await h.startWorker();
    const run = await h.service.startMigrationRun({ tenants: { ids: [id!] } }, ACTOR);
    expect(await waitForRunEnd(h.db, run.id)).toMatchObject({ status: 'SUCCEEDED' });
    await worker.close();
    const comment = await h.database.pool.query<{ marker: string }>(
      `SELECT obj_description(to_regnamespace($1), 'pg_namespace') AS marker`,
      [await schemaOf(id!)],
    );
    expect(comment.rows[0]?.marker).toBe(`tenant-control-plane deployment ${await readDeploymentId(h.db)}`);
  });
});
