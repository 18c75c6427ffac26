import { cp, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DriftError,
  DriftKind,
  IrreversibleMigrationError,
  MigrationFailedError,
  TransactionMode,
  UnknownVersionError,
  getHistory,
  getStatus,
  loadCatalog,
  migrateDown,
  migrateUp,
  stampVersion,
} from '../../../src/migrations/index.js';
import type { AppliedStep } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { columnsOf, fixtureDir, ledgerVersions, tablesIn } from './fixtures.js';

describe('migrateUp', () => {
  const db = useTestDatabase();

  it('applies every file up to the latest, in numeric order, and records each in the ledger', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('uplatest');
    const seen: AppliedStep[] = [];
    const result = await migrateUp(db.pool, target, catalog, { onApplied: (step) => void seen.push(step) });
    expect(result).toMatchObject({ fromVersion: null, toVersion: '0010' });
    expect(result.steps.map((s) => s.version)).toEqual(['0001', '0002', '0010']);
    expect(seen.map((s) => s.version)).toEqual(['0001', '0002', '0010']);
    expect(await tablesIn(db.pool, target.schema)).toEqual(['control_plane_ledger', 'gadgets', 'widgets']);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002', '0010']);
    const again = await migrateUp(db.pool, target, catalog);
    expect(again).toEqual({ fromVersion: '0010', toVersion: '0010', steps: [] });
  });

  it('makes a ledger without a TOAST table, which every new tenant would otherwise pay for', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('ledger_toast');
    await migrateUp(db.pool, target, catalog);
    const { rows } = await db.pool.query<{ toast: boolean }>(
      `SELECT reltoastrelid <> 0 AS toast FROM pg_class WHERE oid = to_regclass($1)`,
      [`${target.schema}.control_plane_ledger`],
    );
    expect(rows).toEqual([{ toast: false }]);
  });

  it('creates the schema when it does not exist yet', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = db.tenantTarget('fresh');
    await migrateUp(db.pool, target, catalog, { toVersion: '1' });
    expect(await tablesIn(db.pool, target.schema)).toEqual(['control_plane_ledger', 'widgets']);
  });

  it('applies up to a version, then only the rest', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('stepwise');
    const first = await migrateUp(db.pool, target, catalog, { toVersion: '0002' });
    expect(first.steps.map((s) => s.version)).toEqual(['0001', '0002']);
    expect(await tablesIn(db.pool, target.schema)).not.toContain('gadgets');
    const rest = await migrateUp(db.pool, target, catalog);
    expect(rest).toMatchObject({ fromVersion: '0002', toVersion: '0010' });
    expect(rest.steps.map((s) => s.version)).toEqual(['0010']);
  });

  it('refuses an unknown target version before touching anything', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = db.tenantTarget('unknown');
    await expect(migrateUp(db.pool, target, catalog, { toVersion: '0003' })).rejects.toBeInstanceOf(UnknownVersionError);
    expect(await tablesIn(db.pool, target.schema)).toEqual([]);
  });

  it('in PER_TENANT mode, a failing file leaves the schema exactly as before and names file, line and SQLSTATE', async () => {
    const catalog = await loadCatalog(fixtureDir('failing'));
    const target = await db.createTenantSchema('failtenant');
    const error = await migrateUp(db.pool, target, catalog).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationFailedError);
    expect(error).toMatchObject({ file: '0003_add_priority.up.sql', sqlState: '42703', line: 4, schema: 'tenant_failtenant' });
    expect((error as Error).message).toMatch(
      /^Migration 0003_add_priority\.up\.sql failed on schema tenant_failtenant at line 4: column "missing_column" does not exist \(SQLSTATE 42703\)$/,
    );
    expect(await tablesIn(db.pool, target.schema)).toEqual([]);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual([]);
  });

  it('times each file of a one-round-trip group separately, whatever its last line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'timed-'));
    await writeFile(path.join(dir, '0001_quick.up.sql'), 'CREATE TABLE quick (id int)\n-- no semicolon, comment last');
    await writeFile(path.join(dir, '0002_slow.up.sql'), "SELECT pg_sleep(0.2);\nCREATE TABLE slow (note text DEFAULT ';');");
    await writeFile(path.join(dir, '0003_quick_again.up.sql'), 'CREATE TABLE quick_again (id int);');
    const catalog = await loadCatalog(dir);
    const target = db.tenantTarget('timed');
    const result = await migrateUp(db.pool, target, catalog);
    const ms = Object.fromEntries(result.steps.map((step) => [step.version, step.executionMs]));
    expect(ms['0002']).toBeGreaterThanOrEqual(190);
    expect(ms['0001']).toBeLessThan(190);
    expect(ms['0003']).toBeLessThan(190);
    const ledger = await db.pool.query<{ version: string; execution_ms: number }>(
      'SELECT version, execution_ms FROM tenant_timed.control_plane_ledger ORDER BY version',
    );
    expect(ledger.rows.map((row) => [row.version, row.execution_ms])).toEqual(
      result.steps.map((step) => [step.version, step.executionMs]),
    );
    expect(await tablesIn(db.pool, target.schema)).toEqual(['control_plane_ledger', 'quick', 'quick_again', 'slow']);
  });

  it('in PER_MIGRATION mode, keeps the files committed before the failure', async () => {
    const catalog = await loadCatalog(fixtureDir('failing'));
    const target = await db.createTenantSchema('failpermig');
    await expect(migrateUp(db.pool, target, catalog, { mode: TransactionMode.PER_MIGRATION })).rejects.toBeInstanceOf(
      MigrationFailedError,
    );
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002']);
    expect(await tablesIn(db.pool, target.schema)).toEqual(['control_plane_ledger', 'first_table', 'second_table']);
    expect(await columnsOf(db.pool, target.schema, 'second_table')).toEqual(['id', 'label']);
  });

  it('runs a no-transaction file (CREATE INDEX CONCURRENTLY) on its own, between transactional groups', async () => {
    const catalog = await loadCatalog(fixtureDir('no_transaction'));
    const target = await db.createTenantSchema('notx');
    const result = await migrateUp(db.pool, target, catalog);
    expect(result.steps.map((s) => s.version)).toEqual(['0001', '0002', '0003']);
    const indexes = await db.pool.query<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'items' ORDER BY indexname`,
      [target.schema],
    );
    expect(indexes.rows.map((r) => r.indexname)).toEqual(['items_id_sku_idx', 'items_pkey', 'items_sku_idx']);
    const invalid = await db.pool.query(`SELECT 1 FROM pg_index WHERE NOT indisvalid`);
    expect(invalid.rowCount).toBe(0);

    await migrateDown(db.pool, target, catalog, { toVersion: '0001' });
    const after = await db.pool.query(`SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE 'items_%sku%'`, [
      target.schema,
    ]);
    expect(after.rowCount).toBe(0);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
  });

  it('reports an edited applied file as drift and refuses to migrate further', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'drift-'));
    await cp(fixtureDir('basic'), dir, { recursive: true });
    const target = await db.createTenantSchema('drift');
    await migrateUp(db.pool, target, await loadCatalog(dir), { toVersion: '0002' });

    await writeFile(path.join(dir, '0001_create_widgets.up.sql'), 'CREATE TABLE widgets (id bigint PRIMARY KEY);\n');
    const edited = await loadCatalog(dir);
    const status = await getStatus(db.pool, target, edited);
    expect(status.drift).toEqual([expect.objectContaining({ kind: DriftKind.CHECKSUM_MISMATCH, version: '0001' })]);
    expect(status.applied.map((a) => a.checksumMatches)).toEqual([false, true]);

    const error = await migrateUp(db.pool, target, edited).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriftError);
    expect((error as Error).message).toContain('0001_create_widgets.up.sql changed');
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002']);
    expect(await tablesIn(db.pool, target.schema)).not.toContain('gadgets');
  });
});

describe('migrateDown', () => {
  const db = useTestDatabase();

  it('reverts to an earlier version: the objects are really gone and the ledger rows deleted', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('down');
    await migrateUp(db.pool, target, catalog);
    const result = await migrateDown(db.pool, target, catalog, { toVersion: '0001' });
    expect(result).toMatchObject({ fromVersion: '0010', toVersion: '0001' });
    expect(result.steps.map((s) => s.version)).toEqual(['0010', '0002']);
    expect(await tablesIn(db.pool, target.schema)).toEqual(['control_plane_ledger', 'widgets']);
    expect(await columnsOf(db.pool, target.schema, 'widgets')).toEqual(['id', 'name']);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
  });

  it('refuses when a step has no down file, and changes nothing', async () => {
    const catalog = await loadCatalog(fixtureDir('no_down'));
    const target = await db.createTenantSchema('nodown');
    await migrateUp(db.pool, target, catalog);
    const error = await migrateDown(db.pool, target, catalog, { toVersion: '0001' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IrreversibleMigrationError);
    expect((error as Error).message).toContain('0002_create_beta.up.sql');
    expect(await tablesIn(db.pool, target.schema)).toEqual(['alpha', 'beta', 'control_plane_ledger', 'gamma']);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002', '0003']);
  });
});

describe('stampVersion, getStatus and getHistory', () => {
  const db = useTestDatabase();

  it('stamps the ledger to exactly the versions up to a version, running no SQL', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('stamp');
    const stamped = await stampVersion(db.pool, target, catalog, '0002');
    expect(stamped).toMatchObject({ fromVersion: null, toVersion: '0002', inserted: ['0001', '0002'], removed: [] });
    expect(await tablesIn(db.pool, target.schema)).toEqual(['control_plane_ledger']);
    const history = await getHistory(db.pool, target, catalog);
    expect(history.map((h) => [h.version, h.executionMs, h.checksumMatches])).toEqual([
      ['0001', 0, true],
      ['0002', 0, true],
    ]);
    expect(history[0]?.checksum).toBe(catalog.require('1').checksum);

    const lowered = await stampVersion(db.pool, target, catalog, '1');
    expect(lowered).toMatchObject({ fromVersion: '0002', toVersion: '0001', inserted: [], removed: ['0002'] });
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
    await expect(stampVersion(db.pool, target, catalog, '0003')).rejects.toBeInstanceOf(UnknownVersionError);
  });

  it('reports the current version, pending files and no drift', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('status');
    expect(await getStatus(db.pool, target, catalog)).toMatchObject({ currentVersion: null, applied: [], drift: [] });
    await migrateUp(db.pool, target, catalog, { toVersion: '0002' });
    const status = await getStatus(db.pool, target, catalog);
    expect(status.currentVersion).toBe('0002');
    expect(status.pending.map((f) => f.version)).toEqual(['0010']);
    expect(status.applied.map((a) => [a.version, a.name, a.checksumMatches])).toEqual([
      ['0001', 'create_widgets', true],
      ['0002', 'add_widget_color', true],
    ]);
    expect(status.applied[0]?.appliedAt).toBeInstanceOf(Date);
  });
});
