import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { describe, expect, it } from 'vitest';
import { RunNotSucceededError, tenantsUpCommand } from '../../../src/cli/tenants-up.js';
import { useRunHarness } from './run-harness.js';

describe('tenants up (CLI)', () => {
  const h = useRunHarness('fleet');

  function capture() {
    const out: string[] = [];
    const bar: string[] = [];
    return {
      out,
      bar,
      io: { out: (line: string) => out.push(line) },
      sink: { write: (text: string) => bar.push(text) },
    };
  }

  it('runs every tenant of an environment through the queue and reports success', async () => {
    await h.createTenants('cli_dev', 3, 'DEVELOPMENT');
    await h.createTenants('cli_prod', 2, 'PRODUCTION');
    const worker = await h.startWorker();
    const { out, bar, io, sink } = capture();
    await tenantsUpCommand(
      h.config,
      { action: 'up', environment: 'development', concurrency: '2' },
      io,
      sink,
    );
    await worker.close();
    expect(out.at(-1)).toMatch(/SUCCEEDED: 3 succeeded, 0 failed/);
    expect(bar.at(-1)).toBe('[####################] 3/3 ok 3 failed 0\n');
    const prod = await h.db.tenantDatabase.findMany({ where: { tenant: { environment: 'PRODUCTION' } } });
    expect(prod.every((d) => d.schemaVersion === null)).toBe(true);
    const audit = await h.db.auditLog.findMany({ where: { action: 'startMigrationRun' } });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ outcome: 'success', targetType: 'MigrationRun' });
    expect(audit[0]?.actor).toMatch(/^cli:/);
  });

  it('exits non-zero and prints the failed targets with their errors', async () => {
    await h.createTenants('cli_bad', 1, 'STAGING');
    // This deployment's schema (its marker), with a table the first migration also creates.
    await h.database.pool.query(
      `CREATE SCHEMA tenant_cli_bad_000;
       COMMENT ON SCHEMA tenant_cli_bad_000 IS 'tenant-control-plane deployment ${await readDeploymentId(h.db)}';
       CREATE TABLE tenant_cli_bad_000.items (id int);`,
    );
    const { out, io, sink } = capture();
    await expect(
      tenantsUpCommand(h.config, { action: 'up', environment: 'staging', 'with-worker': true }, io, sink),
    ).rejects.toBeInstanceOf(RunNotSucceededError);
    expect(out.join('\n')).toMatch(/FAILED cli_bad_000: .*0001_create_items.*42P07/);
  });
});
