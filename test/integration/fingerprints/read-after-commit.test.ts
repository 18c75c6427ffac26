import type { QueryResult } from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSchemaFingerprint, schemaFingerprintRead } from '../../../src/fingerprints/read-schema.js';
import {
  loadCatalog,
  migrateUp,
  type MigrationCatalog,
  type ReadAfterCommit,
} from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir, ledgerVersions } from '../migrations/fixtures.js';

describe("a fingerprint read riding in a move's round trip", () => {
  const db = useTestDatabase();
  let catalog: MigrationCatalog;

  beforeAll(async () => {
    catalog = await loadCatalog(fixtureDir('fingerprint'));
  });

  it('gives the same fingerprint as a separate read, on a fresh connection and on a prepared one', async () => {
    for (const [name, toVersion] of [
      ['ride_a', '0002'],
      ['ride_b', null],
      ['ride_c', '0001'],
    ] as const) {
      const target = db.tenantTarget(name);
      const moved = await migrateUp(db.pool, target, catalog, {
        toVersion,
        expectedVersion: null,
        readAfterCommit: schemaFingerprintRead(target.schema),
      });
      expect(moved.afterCommit?.ok).toBe(true);
      const separate = await readSchemaFingerprint(db.pool, target.schema);
      expect(moved.afterCommit).toEqual({ ok: true, value: separate });
      expect(separate.description.tables.length).toBeGreaterThan(0);
    }
  });

  it('keeps a committed move when the read after it fails, with its steps and their times from the ledger', async () => {
    const target = db.tenantTarget('ride_failing');
    const failing: ReadAfterCommit<number> = {
      sql: () => 'SELECT 1 / 0 AS never',
      read: () => 1,
    };
    const moved = await migrateUp(db.pool, target, catalog, {
      toVersion: '0002',
      expectedVersion: null,
      readAfterCommit: failing,
    });
    expect(moved.afterCommit?.ok).toBe(false);
    expect(moved.afterCommit).toMatchObject({ error: { code: '22012' } });
    expect(moved.steps.map((step) => step.version)).toEqual(['0001', '0002']);
    const ledger = await db.pool.query<{ version: string; execution_ms: number }>(
      `SELECT version, execution_ms FROM ${target.schema}.control_plane_ledger ORDER BY version`,
    );
    expect(moved.steps.map((step) => step.executionMs)).toEqual(ledger.rows.map((row) => row.execution_ms));
  });

  it('hands back a read whose parsing throws as a failed read, the move kept', async () => {
    const target = db.tenantTarget('ride_unparsable');
    const unparsable: ReadAfterCommit<never> = {
      sql: () => 'SELECT 1 AS one',
      read: (_client, results: readonly QueryResult[]) => {
        throw new Error(`unexpected ${results.length} result`);
      },
    };
    const moved = await migrateUp(db.pool, target, catalog, {
      toVersion: '0001',
      expectedVersion: null,
      readAfterCommit: unparsable,
    });
    expect(moved.afterCommit).toMatchObject({ ok: false, error: { message: 'unexpected 1 result' } });
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
  });

  it('reads nothing when the move fails, and the careful path names the file', async () => {
    const target = db.tenantTarget('ride_drifted');
    await migrateUp(db.pool, target, catalog, { toVersion: '0001' });
    // The ledger is not where the caller believes: the one-trip guard refuses; the careful path moves.
    const moved = await migrateUp(db.pool, target, catalog, {
      toVersion: '0002',
      expectedVersion: null,
      readAfterCommit: schemaFingerprintRead(target.schema),
    });
    expect(moved.steps.map((step) => step.version)).toEqual(['0002']);
    expect(moved.afterCommit).toBeUndefined();
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002']);
  });
});
