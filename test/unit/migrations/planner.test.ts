import { describe, expect, it } from 'vitest';
import { captureError } from '../../helpers/errors.js';
import {
  DriftError,
  DriftKind,
  IrreversibleMigrationError,
  TransactionMode,
  UnknownVersionError,
  assertNoDrift,
  buildCatalog,
  detectDrift,
  groupSteps,
  planDown,
  planUp,
  renderPlanSql,
  loadSqlParser,
} from '../../../src/migrations/index.js';
import type { LedgerEntry, MigrationCatalog } from '../../../src/migrations/index.js';

await loadSqlParser();

function catalogOf(files: Record<string, string>): MigrationCatalog {
  return buildCatalog(
    '/catalog',
    Object.entries(files).map(([fileName, sql]) => ({ fileName, path: `/catalog/${fileName}`, bytes: Buffer.from(sql) })),
  );
}

const catalog = catalogOf({
  '0001_a.up.sql': 'CREATE TABLE a ();',
  '0001_a.down.sql': 'DROP TABLE a;',
  '0002_b.up.sql': 'CREATE TABLE b ();',
  '0002_b.down.sql': 'DROP TABLE b;',
  '0010_c.up.sql': 'CREATE TABLE c ();',
  '0010_c.down.sql': 'DROP TABLE c;',
});

function applied(...versions: string[]): LedgerEntry[] {
  return versions.map((version) => {
    const file = catalog.require(version);
    return { version: file.version, name: file.name, checksum: file.checksum, appliedAt: new Date(0), executionMs: 1 };
  });
}

describe('planUp', () => {
  it('plans every pending file in numeric order when no target is given', () => {
    const plan = planUp(catalog, []);
    expect(plan.steps.map((file) => file.version)).toEqual(['0001', '0002', '0010']);
    expect(plan).toMatchObject({ direction: 'up', fromVersion: null, toVersion: '0010', drift: [] });
  });

  it('stops at the target version, inclusive', () => {
    const plan = planUp(catalog, applied('0001'), '2');
    expect(plan.steps.map((file) => file.version)).toEqual(['0002']);
    expect(plan).toMatchObject({ fromVersion: '0001', toVersion: '0002' });
  });

  it('plans nothing when the target is already applied', () => {
    const plan = planUp(catalog, applied('0001', '0002', '0010'));
    expect(plan.steps).toEqual([]);
    expect(plan.toVersion).toBe('0010');
  });

  it('refuses an unknown target version', () => {
    expect(() => planUp(catalog, [], '0003')).toThrow(UnknownVersionError);
  });

  it('attaches drift, which assertNoDrift turns into a DriftError listing each one', () => {
    const ledger = [
      { ...applied('0001')[0]!, checksum: 'f'.repeat(64) },
      { version: '0005', name: 'gone', checksum: 'e'.repeat(64), appliedAt: new Date(0), executionMs: 1 },
    ];
    const plan = planUp(catalog, ledger);
    expect(plan.drift.map((d) => [d.kind, d.version])).toEqual([
      [DriftKind.CHECKSUM_MISMATCH, '0001'],
      [DriftKind.MISSING_FROM_CATALOG, '0005'],
    ]);
    const error = captureError(() => assertNoDrift(plan, 'tenant_acme'));
    expect(error).toBeInstanceOf(DriftError);
    expect((error as DriftError).message).toContain('0001_a.up.sql changed');
    expect((error as DriftError).message).toContain('0005_gone is missing');
    expect((error as DriftError).code).toBe('PRECONDITION_FAILED');
  });
});

describe('detectDrift', () => {
  it('reports nothing when every applied checksum matches', () => {
    expect(detectDrift(catalog, applied('0001', '0002'))).toEqual([]);
  });
});

describe('planDown', () => {
  it('reverts everything above the target, newest first', () => {
    const plan = planDown(catalog, applied('0001', '0002', '0010'), '0001');
    expect(plan.steps.map((file) => file.version)).toEqual(['0010', '0002']);
    expect(plan).toMatchObject({ direction: 'down', fromVersion: '0010', toVersion: '0001' });
  });

  it('reverts everything for target 0', () => {
    const plan = planDown(catalog, applied('0001', '0002'), '0');
    expect(plan.steps.map((file) => file.version)).toEqual(['0002', '0001']);
    expect(plan.toVersion).toBeNull();
  });

  it('refuses when a step has no down file, naming the file', () => {
    const partial = catalogOf({ '0001_a.up.sql': 'x', '0001_a.down.sql': 'y', '0002_b.up.sql': 'z', '0003_c.up.sql': 'w', '0003_c.down.sql': 'v' });
    const ledger = partial.files.map((f) => ({ version: f.version, name: f.name, checksum: f.checksum, appliedAt: new Date(0), executionMs: 0 }));
    const error = captureError(() => planDown(partial, ledger, '0001'));
    expect(error).toBeInstanceOf(IrreversibleMigrationError);
    expect((error as Error).message).toContain('0002_b.up.sql');
    expect(planDown(partial, ledger, '0002').steps.map((f) => f.version)).toEqual(['0003']);
  });

  it('refuses an unknown target and a drifted step', () => {
    expect(() => planDown(catalog, applied('0001'), '0007')).toThrow(UnknownVersionError);
    const drifted = [...applied('0001'), { ...applied('0002')[0]!, checksum: '0'.repeat(64) }];
    expect(() => planDown(catalog, drifted, '0001')).toThrow(DriftError);
  });
});

describe('groupSteps', () => {
  const mixed = catalogOf({
    '1_a.up.sql': 'A',
    '2_b.up.sql': 'B',
    '3_c.up.sql': '-- migrate:no-transaction\nC',
    '4_d.up.sql': 'D',
  });

  it('runs all transactional files together per tenant, split by a no-transaction file', () => {
    const groups = groupSteps(planUp(mixed, []), TransactionMode.PER_TENANT);
    expect(groups.map((g) => g.map((f) => f.version))).toEqual([['1', '2'], ['3'], ['4']]);
  });

  it('runs each file alone per migration', () => {
    const groups = groupSteps(planUp(mixed, []), TransactionMode.PER_MIGRATION);
    expect(groups.map((g) => g.map((f) => f.version))).toEqual([['1'], ['2'], ['3'], ['4']]);
  });

  it('renders the plan with a header per file and BEGIN/COMMIT only around transactional groups', () => {
    const sql = renderPlanSql(planUp(mixed, []), { schema: 'tenant_acme' });
    expect(sql).toContain('-- 1_a.up.sql\nA');
    expect(sql.match(/BEGIN;/g)).toHaveLength(2);
    expect(sql.match(/COMMIT;/g)).toHaveLength(2);
    expect(sql).toContain('SET LOCAL search_path TO tenant_acme, public;');
    expect(sql.indexOf('-- 3_c.up.sql')).toBeGreaterThan(sql.indexOf('COMMIT;'));
    expect(renderPlanSql(planUp(mixed, planUp(mixed, []).steps.map((f) => ({ version: f.version, name: f.name, checksum: f.checksum, appliedAt: new Date(0), executionMs: 0 }))))).toContain('Nothing to do');
  });
});
