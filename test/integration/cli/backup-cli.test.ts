/**
 * `npm run migrate -- backup --tenant <name>` and `restore --backup <id>` (issue 15), run as real
 * CLI processes against the control plane and the tenant server.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { provisionTenant } from '../../../src/tenants/provisioner.js';
import { useRunHarness } from '../runs/run-harness.js';

// This file reads the CLI's log lines.
const runCliLogging = (args: string[], env: Record<string, string>) =>
  runCli(args, { LOG_LEVEL: 'info', ...env });

const BACKUP_DIR = mkdtempSync(path.join(tmpdir(), 'backup-cli-'));
// Each case starts `tsx` processes, which takes seconds on a busy 2-core machine.
const CLI_TEST_TIMEOUT_MS = 120_000;

describe('npm run migrate -- backup / restore', () => {
  const h = useRunHarness('fleet', { BACKUP_DIR });
  const env = () => ({
    DATABASE_URL: h.config.databaseUrl,
    TENANT_DATABASE_URL: h.config.tenantDatabaseUrl,
    MIGRATIONS_DIR: h.config.migrationsDir,
    BACKUP_DIR,
  });

  afterAll(async () => {
    await rm(BACKUP_DIR, { recursive: true, force: true });
  });

  it(
    'backs a tenant up and restores its rows from the printed backup id',
    async () => {
      const [tenantId] = await h.createTenants('bkcli', 1);
      const tenant = await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenantId! } });
      const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId: tenantId! } });
      await provisionTenant({
        location: database,
        connectionString: h.database.url,
        pool: h.database.pool,
        catalog: h.catalog,
        deploymentId: await readDeploymentId(h.db),
      });
      const schema = database.schemaName!;
      await h.database.pool.query(
        `INSERT INTO ${schema}.items (name) SELECT 'i' || g FROM generate_series(1, 25) g`,
      );

      const backedUp = await runCliLogging(['backup', '--tenant', tenant.name], env());
      expect(backedUp.stderr).toBe('');
      expect(backedUp.code).toBe(0);
      const backupId = /backup ([0-9a-f-]{36})/.exec(backedUp.stdout)?.[1];
      expect(backupId, backedUp.stdout).toBeTruthy();

      await h.database.pool.query(`DELETE FROM ${schema}.items`);
      const restored = await runCliLogging(['restore', '--backup', backupId!], env());
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stdout).toContain(`restored tenant ${tenant.name} from backup ${backupId}`);
      const { rows } = await h.database.pool.query(`SELECT count(*)::int AS n FROM ${schema}.items`);
      expect(rows[0]?.n).toBe(25);
    },
    CLI_TEST_TIMEOUT_MS,
  );

  it(
    'answers an unknown backup with one error line (exit 1) and bad usage with exit 2',
    async () => {
      const [unknown, usage] = await Promise.all([
        runCliLogging(['restore', '--backup', randomUUID()], env()),
        runCliLogging(['backup'], env()),
      ]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/^error: No such backup/);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/backup needs --tenant/);
    },
    CLI_TEST_TIMEOUT_MS,
  );
});
