import { LEDGER_TABLE } from '../../../src/migrations/ledger.js';
/**
 * Issue 15's acceptance through the API: a run with backup: true over 20 tenants leaves a backup
 * per tenant; restoreTenantBackup brings back exactly the rows, structure, ledger and version of
 * a backup; a file changed on disk is refused with nothing changed; a tenant deleted with
 * dropData comes back; backupTenant is a BACKUP run.
 */
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectEventually } from '../../helpers/eventually.js';
import { useApiHarness } from '../graphql/harness.js';
import { waitForRunEnd } from '../runs/run-assertions.js';

const BACKUP_DIR = mkdtempSync(path.join(tmpdir(), 'backup-runs-'));
const TENANTS = 20;

const TENANT_BACKUPS = `query ($id: ID!) { tenant(id: $id) { id name schemaVersion deletedAt
  backups { id reason schemaVersion sizeBytes createdAt tenant { id } } } }`;

// The UUID inside a global id (`Type:uuid`, base64).
function uuidOf(globalId: string): string {
  return Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;
}

interface Backup {
  id: string;
  reason: string;
  schemaVersion: string | null;
  sizeBytes: number;
}

describe('backups and restores as runs', () => {
  const api = useApiHarness({ BACKUP_DIR, GRAPHQL_MAX_COST: '100000', LOG_LEVEL: 'silent' });
  const tenants: { id: string; name: string; tenantId: string; schema: string }[] = [];

  afterAll(async () => {
    await rm(BACKUP_DIR, { recursive: true, force: true });
  });

  beforeAll(async () => {
    for (let i = 0; i < TENANTS; i += 1) {
      const name = api.tenantName(`bk-${String(i).padStart(2, '0')}`);
      const result = await api.gql(
        `mutation ($input: CreateTenantInput!) { createTenant(input: $input) {
          __typename ... on CreateTenantSuccess { tenant { id tenantId } } ... on Error { message } } }`,
        { input: { name } },
      );
      const created = result.data?.createTenant;
      expect(created?.__typename, JSON.stringify(result)).toBe('CreateTenantSuccess');
      tenants.push({
        id: created.tenant.id,
        tenantId: created.tenant.tenantId,
        name,
        schema: `tenant_${name.replace(/-/g, '_')}`,
      });
    }
    await expectEventually(
      async () => {
        const { rows } = await api.database.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM control_plane.tenants WHERE tenant_id = ANY($1::uuid[]) AND status = 'active'`,
          [tenants.map((t) => t.tenantId)],
        );
        expect(rows[0]?.n).toBe(TENANTS);
      },
      { timeoutMs: 90_000, intervalMs: 200 },
    );
    for (const tenant of tenants) {
      await api.database.pool.query(
        `INSERT INTO ${tenant.schema}.accounts (name, plan) SELECT 'account ' || i, 'team' FROM generate_series(1, 30) i;
         INSERT INTO ${tenant.schema}.users (account_id, email) SELECT 1 + i % 30, 'u' || i || '@example.com' FROM generate_series(1, 60) i;
         INSERT INTO ${tenant.schema}.audit_events (action) SELECT 'login' FROM generate_series(1, 20)`,
      );
    }
  }, 120_000);

  // Row checksums of every table, the ledger, and the columns and indexes of the schema.
  async function snapshot(schema: string) {
    const q = async (sql: string) => (await api.database.pool.query(sql)).rows;
    const tables = await q(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = '${schema}' ORDER BY table_name`,
    );
    const rows: Record<string, unknown> = {};
    for (const { table_name: table } of tables as { table_name: string }[]) {
      rows[table] = await q(
        `SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) AS h, count(*)::int AS n FROM ${schema}.${table} t`,
      );
    }
    return {
      rows,
      ledger: await q(`SELECT version, name, checksum FROM ${schema}.${LEDGER_TABLE} ORDER BY version`),
      columns: await q(
        `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
         WHERE table_schema = '${schema}' ORDER BY table_name, column_name`,
      ),
      indexes: await q(
        `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = '${schema}' ORDER BY indexname`,
      ),
    };
  }

  async function backupsOf(id: string): Promise<Backup[]> {
    const result = await api.gql(TENANT_BACKUPS, { id });
    expect(result.errors).toBeUndefined();
    return result.data?.tenant.backups as Backup[];
  }

  async function restore(backupId: string, confirmName: string) {
    const result = await api.gql(
      `mutation ($input: RestoreTenantBackupInput!) { restoreTenantBackup(input: $input) {
        __typename ... on RestoreTenantBackupSuccess { run { id kind } } ... on Error { message code } } }`,
      { input: { backupId, confirmName } },
    );
    expect(result.errors).toBeUndefined();
    return result.data?.restoreTenantBackup;
  }

  async function cachedVersion(tenantId: string): Promise<string | null> {
    const { rows } = await api.database.pool.query<{ v: string | null }>(
      `SELECT schema_version AS v FROM control_plane.tenant_databases WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0]!.v;
  }

  let runBackups: Map<string, Backup>;
  let before: Map<string, Awaited<ReturnType<typeof snapshot>>>;

  it('backs every target up first in a run with backup: true: one backup per tenant', async () => {
    before = new Map();
    for (const tenant of tenants) before.set(tenant.id, await snapshot(tenant.schema));
    const result = await api.gql(
      `mutation ($input: StartRollbackInput!) { startRollback(input: $input) {
        __typename ... on StartRollbackSuccess { run { id } } ... on Error { message } } }`,
      { input: { targetVersion: '0003', backup: true, tenants: { ids: tenants.map((t) => t.id) } } },
    );
    const runId = result.data?.startRollback.run?.id as string;
    expect(runId, JSON.stringify(result)).toBeTruthy();
    const run = await waitForRunEnd(api.app.db, uuidOf(runId), 90_000);
    expect(run).toMatchObject({ status: 'SUCCEEDED', succeeded: TENANTS, backup: true });

    runBackups = new Map();
    for (const tenant of tenants) {
      const backups = await backupsOf(tenant.id);
      expect(backups).toHaveLength(1);
      expect(backups[0]).toMatchObject({ reason: `before run ${uuidOf(runId)}`, schemaVersion: '0004' });
      expect(backups[0]!.sizeBytes).toBeGreaterThan(0);
      runBackups.set(tenant.id, backups[0]!);
      expect(await cachedVersion(tenant.tenantId)).toBe('0003');
    }
  }, 120_000);

  it('restores exactly the rows, structure, ledger and version of the backup after rows changed by hand', async () => {
    const tenant = tenants[0]!;
    await api.database.pool.query(
      `UPDATE ${tenant.schema}.accounts SET plan = 'free' WHERE id % 2 = 0; DELETE FROM ${tenant.schema}.users WHERE id > 40`,
    );
    const wrong = await restore(runBackups.get(tenant.id)!.id, 'not-the-name');
    expect(wrong).toMatchObject({ __typename: 'ValidationError' });

    const started = await restore(runBackups.get(tenant.id)!.id, tenant.name);
    expect(started).toMatchObject({ __typename: 'RestoreTenantBackupSuccess', run: { kind: 'RESTORE' } });
    const run = await waitForRunEnd(api.app.db, uuidOf(started.run.id as string));
    expect(run.status).toBe('SUCCEEDED');
    expect(await snapshot(tenant.schema)).toEqual(before.get(tenant.id));
    expect(await cachedVersion(tenant.tenantId)).toBe('0004');
  });

  it('refuses a backup file changed on disk and changes nothing', async () => {
    const tenant = tenants[1]!;
    const backup = runBackups.get(tenant.id)!;
    const { rows } = await api.database.pool.query<{ storage_key: string }>(
      `SELECT storage_key FROM control_plane.tenant_backups WHERE tenant_id = $1`,
      [tenant.tenantId],
    );
    const file = path.join(BACKUP_DIR, rows[0]!.storage_key);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)] = bytes[Math.floor(bytes.length / 2)]! ^ 0x01;
    await writeFile(file, bytes);
    const unchanged = await snapshot(tenant.schema);

    const refused = await restore(backup.id, tenant.name);
    expect(refused).toMatchObject({ __typename: 'PreconditionFailedError' });
    expect(refused.message).toMatch(/changed since it was written/);
    expect(await snapshot(tenant.schema)).toEqual(unchanged);
    expect(await cachedVersion(tenant.tenantId)).toBe('0003');
    const runs = await api.database.pool.query(
      `SELECT 1 FROM control_plane.migration_runs WHERE kind = 'restore' AND backup_id = $1`,
      [uuidOf(backup.id)],
    );
    expect(runs.rowCount).toBe(0);
  });

  it('backs a tenant up before deleteTenant(dropData), and brings it back from that backup', async () => {
    const tenant = tenants[2]!;
    const beforeDelete = await snapshot(tenant.schema);
    const deleted = await api.gql(
      `mutation ($input: DeleteTenantInput!) { deleteTenant(input: $input) { __typename ... on Error { message } } }`,
      { input: { id: tenant.id, confirmName: tenant.name, dropData: true } },
    );
    expect(deleted.data?.deleteTenant.__typename, JSON.stringify(deleted)).toBe('DeleteTenantSuccess');
    const { rowCount } = await api.database.pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [
      tenant.schema,
    ]);
    expect(rowCount).toBe(0);
    const backups = await backupsOf(tenant.id);
    expect(backups.map((b) => b.reason)).toEqual(['before delete', expect.stringMatching(/^before run /)]);

    const started = await restore(backups[0]!.id, tenant.name);
    expect(started.__typename, JSON.stringify(started)).toBe('RestoreTenantBackupSuccess');
    expect((await waitForRunEnd(api.app.db, uuidOf(started.run.id as string))).status).toBe('SUCCEEDED');
    expect(await snapshot(tenant.schema)).toEqual(beforeDelete);
    const back = await api.gql(TENANT_BACKUPS, { id: tenant.id });
    expect(back.data?.tenant.deletedAt).toBeNull();
    expect(await cachedVersion(tenant.tenantId)).toBe('0003');
  });

  it('runs backupTenant (OPERATOR) as a BACKUP run', async () => {
    const tenant = tenants[3]!;
    const operator = await api.createToken('OPERATOR');
    const result = await api.gql(
      `mutation ($input: BackupTenantInput!) { backupTenant(input: $input) {
        __typename ... on BackupTenantSuccess { run { id kind } } ... on Error { message } } }`,
      { input: { tenantId: tenant.id } },
      operator,
    );
    expect(result.data?.backupTenant, JSON.stringify(result)).toMatchObject({ run: { kind: 'BACKUP' } });
    expect((await waitForRunEnd(api.app.db, uuidOf(result.data?.backupTenant.run.id as string))).status).toBe(
      'SUCCEEDED',
    );
    const backups = await backupsOf(tenant.id);
    expect(backups.map((b) => [b.reason, b.schemaVersion])).toEqual([
      ['manual', '0003'],
      [expect.stringMatching(/^before run /), '0004'],
    ]);
    const denied = await api.gql(
      `mutation ($input: RestoreTenantBackupInput!) { restoreTenantBackup(input: $input) { __typename } }`,
      { input: { backupId: backups[0]!.id, confirmName: tenant.name } },
      operator,
    );
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
