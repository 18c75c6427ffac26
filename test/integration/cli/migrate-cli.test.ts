import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { loadConfig } from '../../../src/config.js';
import { createSecretBoxFromConfig } from '../../../src/crypto/secret-box.js';
import { useTestDatabase } from '../../helpers/database.js';
import { ledgerVersions, tablesIn } from '../migrations/fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

// Each test spawns several CLI processes (tsx compiles on start): slow on a loaded 2-core machine.
describe('npm run migrate', { timeout: 240_000 }, () => {
  const db = useTestDatabase();
  const env = () => ({
    TENANT_DATABASE_URL: db.url,
    DATABASE_URL: db.url,
    MIGRATIONS_DIR: path.join(ROOT, 'test/fixtures/migrations/concurrent'),
  });

  it('applies each migration once when two CLI processes run `tenant up` at the same moment', async () => {
    const [first, second] = await Promise.all([
      runCli(['tenant', 'up', '--tenant', 'clirace'], env()),
      runCli(['tenant', 'up', '--tenant', 'clirace'], env()),
    ]);
    expect(first, first.stderr).toMatchObject({ code: 0 });
    expect(second, second.stderr).toMatchObject({ code: 0 });
    expect(await ledgerVersions(db.pool, 'tenant_clirace')).toEqual(['0001', '0002', '0003']);
    const rows = await db.pool.query<{ migration: string }>(
      `SELECT migration FROM tenant_clirace.applications`,
    );
    expect(rows.rows.map((r) => r.migration).sort()).toEqual(['0002', '0003']);
    expect(`${first.stdout}${second.stdout}`).toMatch(/schema tenant_clirace: (applied|nothing to do)/);
  });

  it('prints the SQL `up` would run for `plan` and runs nothing', async () => {
    const result = await runCli(['plan', '--tenant', 'tenant_planned', '--to', '2'], env());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('-- 0001_create_counter.up.sql');
    expect(result.stdout).toContain('-- 0002_create_orders.up.sql');
    expect(result.stdout).not.toContain('0003_create_invoices');
    expect(result.stdout).toContain('BEGIN;');
    expect(await tablesIn(db.pool, 'tenant_planned')).toEqual([]);
  });

  it('shows status and history, and rolls back with tenant down', async () => {
    const up = await runCli(['tenant', 'up', '--tenant', 'shown', '--mode', 'per-migration'], {
      ...env(),
      MIGRATIONS_DIR: path.join(ROOT, 'migrations/tenant'),
    });
    expect(up.code, up.stderr).toBe(0);
    const tenantEnv = { ...env(), MIGRATIONS_DIR: path.join(ROOT, 'migrations/tenant') };
    const status = await runCli(['tenant', 'status', '--tenant', 'shown'], tenantEnv);
    expect(status.stdout).toContain('current version: 0004');
    expect(status.stdout).toContain('drift:           none');
    const history = await runCli(['tenant', 'history', '--tenant', 'shown'], tenantEnv);
    expect(history.stdout).toMatch(/0003\s+add_task_priority\s+\S+\s+\d+\s+ok/);
    const down = await runCli(['tenant', 'down', '--tenant', 'shown', '--to', '0002'], tenantEnv);
    expect(down.code, down.stderr).toBe(0);
    expect(await tablesIn(db.pool, 'tenant_shown')).not.toContain('audit_events');
    expect(await ledgerVersions(db.pool, 'tenant_shown')).toEqual(['0001', '0002']);
  });

  it('exits 2 with the usage on bad usage, 1 with one line on a failure', async () => {
    const usage = await runCli(['tenant', 'down', '--tenant', 'x'], env());
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('Usage: npm run migrate');
    const unknown = await runCli(['tenant', 'up', '--tenant', 'x', '--bogus'], env());
    expect(unknown.code).toBe(2);
    for (const args of [
      ['tenants', 'up', '--concurrency', '0'],
      ['tenants', 'up', '--environment', 'moon'],
      ['tenants', 'down'],
    ]) {
      const fleetUsage = await runCli(args, env());
      expect(fleetUsage.code).toBe(2);
      expect(fleetUsage.stderr).toContain('Usage: npm run migrate');
    }
    const badConfig = await runCli(['tenant', 'status', '--tenant', 'x'], { ...env(), PORT: 'eighty' });
    expect(badConfig).toMatchObject({
      code: 1,
      stderr: 'error: Invalid PORT: Invalid input: expected number, received NaN\n',
    });
    // This database has no control plane: the fleet command fails with one leading error line.
    const noControlPlane = await runCli(['tenants', 'up'], env());
    expect(noControlPlane.code).toBe(1);
    expect(noControlPlane.stderr).toMatch(/^error: The control plane is not migrated in database/);
  });
});

describe('npm run migrate with a control plane', { timeout: 240_000 }, () => {
  const db = useTestDatabase({ controlPlane: true });
  const env = () => ({
    TENANT_DATABASE_URL: db.url,
    DATABASE_URL: db.url,
    MIGRATIONS_DIR: path.join(ROOT, 'migrations/tenant'),
  });

  async function registerTenant(name: string, schema: string): Promise<string> {
    const config = loadConfig(env());
    const box = createSecretBoxFromConfig(config);
    const id = randomUUID();
    const { rows } = await db.pool.query<{ id: string }>(
      `WITH t AS (INSERT INTO control_plane.tenants (name, status) VALUES ($1, 'active') RETURNING tenant_id)
       INSERT INTO control_plane.tenant_databases
         (id, tenant_id, connection_string_encrypted, database_name, host, port, status, isolation, schema_name)
       SELECT $5, tenant_id, $2, $3, '127.0.0.1', 5432, 'active', 'schema', $4 FROM t RETURNING id`,
      [name, box.sealConnectionString(id, db.url), db.name, schema, id],
    );
    return rows[0]!.id;
  }

  it('finds a registered tenant by name, migrates its schema and updates the cached version', async () => {
    // The registered schema deliberately differs from the `tenant_<name>` convention.
    const id = await registerTenant('acme', 'tenant_acme_registered');
    const up = await runCli(['tenant', 'up', '--tenant', 'acme', '--to', '0003'], env());
    expect(up.code, up.stderr).toBe(0);
    expect(await ledgerVersions(db.pool, 'tenant_acme_registered')).toEqual(['0001', '0002', '0003']);
    expect(await tablesIn(db.pool, 'tenant_acme')).toEqual([]);
    const cached = await db.pool.query(
      'SELECT schema_version FROM control_plane.tenant_databases WHERE id = $1',
      [id],
    );
    expect(cached.rows[0].schema_version).toBe('0003');
    const stamp = await runCli(['tenant', 'stamp', '--tenant', 'acme', '--to', '0004'], env());
    expect(stamp.code, stamp.stderr).toBe(0);
    const stamped = await db.pool.query(
      'SELECT schema_version FROM control_plane.tenant_databases WHERE id = $1',
      [id],
    );
    expect(stamped.rows[0].schema_version).toBe('0004');
  });

  it('refuses an unknown tenant name instead of creating a schema for it', async () => {
    const result = await runCli(['tenant', 'up', '--tenant', 'acmee'], env());
    expect(result).toMatchObject({
      code: 1,
      stderr: 'error: No tenant named "acmee" in the control plane (see the tenants query)\n',
    });
    expect(await tablesIn(db.pool, 'tenant_acmee')).toEqual([]);
    const schemas = await db.pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_acmee'`);
    expect(schemas.rowCount).toBe(0);
  });
});
