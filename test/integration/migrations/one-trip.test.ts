import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DriftError,
  MigrationFailedError,
  TransactionMode,
  loadCatalog,
  migrateUp,
} from '../../../src/migrations/index.js';
import { migrateUpInOneTrip, type OneTripOutcome } from '../../../src/migrations/one-trip.js';
import type { MigrateResult } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir, ledgerVersions, tablesIn } from './fixtures.js';

const NOT_APPLICABLE = { kind: 'not-applicable' };

function moved(outcome: OneTripOutcome): MigrateResult {
  if (outcome.kind !== 'moved') throw new Error(`expected a move, got ${outcome.kind}`);
  return outcome.result;
}

describe('migrateUpInOneTrip', () => {
  const db = useTestDatabase();

  it('moves a target from the expected version in one transaction, with timed ledger rows', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('onetrip');
    const fresh = await migrateUpInOneTrip(db.pool, target, catalog, { expectedVersion: null, toVersion: '0002' });
    expect(fresh).toMatchObject({ kind: 'moved', result: { fromVersion: null, toVersion: '0002' } });
    expect(moved(fresh).steps.map((s) => s.version)).toEqual(['0001', '0002']);
    const rest = await migrateUpInOneTrip(db.pool, target, catalog, { expectedVersion: '0002' });
    expect(moved(rest).steps.map((s) => s.version)).toEqual(['0010']);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002', '0010']);
    const timed = await db.pool.query<{ execution_ms: number }>(
      `SELECT execution_ms FROM ${target.schema}.control_plane_ledger`,
    );
    expect(timed.rows.every((row) => Number.isInteger(row.execution_ms) && row.execution_ms >= 0)).toBe(true);
  });

  it('changes nothing and declines when the ledger is not where the caller believes', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('onetrip_wrong');
    await migrateUp(db.pool, target, catalog, { toVersion: '0001' });
    for (const expectedVersion of [null, '0002']) {
      expect(await migrateUpInOneTrip(db.pool, target, catalog, { expectedVersion })).toEqual({
        kind: 'unexpected-ledger',
      });
    }
    expect(await migrateUpInOneTrip(db.pool, target, catalog, { expectedVersion: '9999' })).toEqual(NOT_APPLICABLE);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
    expect(await tablesIn(db.pool, target.schema)).toEqual(['control_plane_ledger', 'widgets']);
    // Nothing pending, PER_MIGRATION: not its case.
    expect(await migrateUpInOneTrip(db.pool, target, catalog, { expectedVersion: '0001', toVersion: '0001' })).toEqual(
      NOT_APPLICABLE,
    );
    expect(
      await migrateUpInOneTrip(db.pool, target, catalog, {
        expectedVersion: '0001',
        mode: TransactionMode.PER_MIGRATION,
      }),
    ).toEqual(NOT_APPLICABLE);
  });

  it('declines a drifted ledger, which the careful path then reports', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'onetrip-drift-'));
    await cp(fixtureDir('basic'), dir, { recursive: true });
    const target = await db.createTenantSchema('onetrip_drift');
    await migrateUp(db.pool, target, await loadCatalog(dir), { toVersion: '0001' });
    await writeFile(path.join(dir, '0001_create_widgets.up.sql'), 'CREATE TABLE widgets (id bigint PRIMARY KEY);\n');
    const edited = await loadCatalog(dir);
    expect(await migrateUpInOneTrip(db.pool, target, edited, { expectedVersion: '0001' })).toEqual({
      kind: 'unexpected-ledger',
    });
    const error = await migrateUp(db.pool, target, edited, { expectedVersion: '0001' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriftError);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
  });

  it('rolls back a failing file whole; migrateUp then names the file', async () => {
    const catalog = await loadCatalog(fixtureDir('failing'));
    const target = await db.createTenantSchema('onetrip_fail');
    expect(await migrateUpInOneTrip(db.pool, target, catalog, { expectedVersion: null })).toEqual({ kind: 'failed' });
    // Whole: not even the ledger table it created stays.
    expect(await tablesIn(db.pool, target.schema)).toEqual([]);
    const error = await migrateUp(db.pool, target, catalog, { expectedVersion: null }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationFailedError);
    expect((error as Error).message).toContain('0003_add_priority.up.sql');
    expect(await ledgerVersions(db.pool, target.schema)).toEqual([]);
  });

  it('lets migrateUp fall back when the belief is stale, and still reach the target', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    const target = await db.createTenantSchema('onetrip_stale');
    await migrateUp(db.pool, target, catalog, { toVersion: '0002' });
    const result = await migrateUp(db.pool, target, catalog, { expectedVersion: null });
    expect(result).toMatchObject({ fromVersion: '0002', toVersion: '0010' });
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002', '0010']);
  });
});
