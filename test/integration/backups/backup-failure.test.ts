/**
 * A run with backup: true whose backups cannot be written (issue 15): every target FAILS at its
 * first step, naming the cause, and no tenant is changed.
 */
import { describe, expect, it } from 'vitest';
import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { provisionTenant } from '../../../src/tenants/provisioner.js';
import { ledgerVersions, waitForRunEnd } from '../runs/run-assertions.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';

describe('a run whose backups fail', () => {
  // A directory under a character device: creating it fails with ENOTDIR.
  const h = useRunHarness('fleet', { BACKUP_DIR: '/dev/null/backups' });

  it('fails each target before anything touched its tenant', async () => {
    const ids = await h.createTenants('bkfail', 3);
    for (const tenantId of ids) {
      const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId } });
      await provisionTenant({
        location: database,
        connectionString: h.database.url,
        pool: h.database.pool,
        catalog: h.catalog,
        deploymentId: await readDeploymentId(h.db),
      });
      await h.db.tenantDatabase.update({ where: { id: database.id }, data: { schemaVersion: '0003' } });
    }
    await h.startWorker();
    const run = await h.service.startRollback(
      { targetVersion: '0001', backup: true, tenants: { ids } },
      ACTOR,
    );
    const ended = await waitForRunEnd(h.db, run.id);
    expect(ended).toMatchObject({ status: 'FAILED', failed: 3, succeeded: 0 });
    const targets = await h.db.migrationRunTarget.findMany({ where: { runId: run.id } });
    for (const target of targets) {
      expect(target).toMatchObject({ status: 'FAILED', appliedVersions: [] });
      expect(target.error).toMatch(/ENOTDIR/);
    }
    for (const tenantId of ids) {
      const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId } });
      expect(database).toMatchObject({ schemaVersion: '0003', status: 'ACTIVE' });
      expect(await ledgerVersions(h.database.pool, database.schemaName!)).toEqual(['0001', '0002', '0003']);
    }
    expect(await h.db.tenantBackup.count()).toBe(0);
  });
});
