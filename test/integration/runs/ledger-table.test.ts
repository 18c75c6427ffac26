/**
 * LEDGER_TABLE: a deployment whose tenant catalog has a table named like the default ledger
 * (`control_plane_ledger`) names its ledger otherwise, and every path keeps to that name.
 */
import { describe, expect, it } from 'vitest';
import { readSchemaFingerprint } from '../../../src/fingerprints/read-schema.js';
import { ACTOR, useRunHarness } from './run-harness.js';
import { waitForRunEnd } from './run-assertions.js';

describe('a deployment with its own ledger table name', () => {
  const h = useRunHarness('own_ledger', { LEDGER_TABLE: 'tenant_ledger' });

  async function tablesOf(schema: string): Promise<string[]> {
    const result = await h.database.pool.query<{ t: string }>(
      `SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1`,
      [schema],
    );
    return result.rows.map((row) => row.t);
  }

  it("provisions, migrates and rolls back with the ledger under that name, beside the catalog's own control_plane_ledger", async () => {
    expect(h.config.ledgerTable).toBe('tenant_ledger');
    await h.startWorker();
    const { tenant, provisioning } = await h.services().tenants.createTenant({ name: 'own-ledger' }, ACTOR);
    expect(await waitForRunEnd(h.db, provisioning.id)).toMatchObject({ status: 'SUCCEEDED' });
    const schema = 'tenant_own_ledger';
    expect(await tablesOf(schema)).toEqual(['control_plane_ledger', 'tenant_ledger']);
    const ledger = await h.database.pool.query<{ version: string }>(
      `SELECT version FROM ${schema}.tenant_ledger ORDER BY version`,
    );
    expect(ledger.rows.map((row) => row.version)).toEqual(['0001', '0002']);
    // The catalog's table is the catalog's: its columns, not the ledger's.
    const columns = await h.database.pool.query<{ c: string }>(
      `SELECT column_name AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'control_plane_ledger' ORDER BY ordinal_position`,
      [schema],
    );
    expect(columns.rows.map((row) => row.c)).toEqual(['entry_id', 'amount', 'memo']);

    // The fingerprint leaves out the ledger, not the catalog's table, and matches the expected one.
    const fingerprint = await readSchemaFingerprint(h.database.pool, schema, 'tenant_ledger');
    expect(fingerprint.description.tables.map((table) => table.name)).toEqual(['control_plane_ledger']);
    const verify = await h.service.startVerifyRun({ tenants: { ids: [tenant.tenantId] } }, ACTOR);
    expect(await waitForRunEnd(h.db, verify.id)).toMatchObject({ status: 'SUCCEEDED' });
    const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId: tenant.tenantId } });
    expect(database.fingerprintMatches).toBe(true);

    const back = await h.service.startRollback(
      { targetVersion: '0001', tenants: { ids: [tenant.tenantId] } },
      ACTOR,
    );
    expect(await waitForRunEnd(h.db, back.id)).toMatchObject({ status: 'SUCCEEDED' });
    const after = await h.database.pool.query<{ version: string }>(
      `SELECT version FROM ${schema}.tenant_ledger`,
    );
    expect(after.rows.map((row) => row.version)).toEqual(['0001']);
    // The API's ledger reads find it too: 0002 is pending again.
    const pending = await h.services().tenants.pendingMigrations(database);
    expect(pending.map((file) => file.version)).toEqual(['0002']);
  });
});
