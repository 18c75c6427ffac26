import { describe, expect, it } from 'vitest';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { databasesByName, ledgerVersions, runToEnd } from '../runs/run-assertions.js';

describe('drift across runs', () => {
  const h = useRunHarness('fingerprint');

  const run = (start: Promise<{ id: string }>) => runToEnd(h.db, start);
  const databasesOf = (ids: string[]) => databasesByName(h.db, ids);

  it('records fingerprints after a migration, names a drifted tenant, leaves it alone, and takes it back once repaired', async () => {
    await h.startWorker();
    const ids = await h.createTenants('drift', 4);
    const first = await run(h.service.startMigrationRun({ targetVersion: '0002', tenants: { ids } }, ACTOR));
    expect(first.run.status).toBe('SUCCEEDED');
    const migrated = await databasesOf(ids);
    const hashes = new Set([...migrated.values()].map((d) => d.fingerprintHash));
    expect(hashes.size).toBe(1);
    expect(
      [...migrated.values()].every(
        (d) => d.fingerprintMatches === true && d.fingerprintExpectedHash === d.fingerprintHash,
      ),
    ).toBe(true);

    await h.database.pool.query(
      'ALTER TABLE tenant_drift_002.users ALTER COLUMN tenant_id TYPE integer USING 0',
    );
    const verify = await run(h.service.startVerifyRun({ tenants: { ids } }, ACTOR));
    expect(verify.run).toMatchObject({ kind: 'VERIFY', status: 'FAILED', succeeded: 3, failed: 1 });
    expect(verify.byName.get('drift_002')?.error).toBe(
      'drift: COLUMN_TYPE users.tenant_id expected "character varying(50)" actual "integer"',
    );
    expect((await databasesOf(ids)).get('drift_002')?.fingerprintDifferences).toEqual([
      {
        kind: 'COLUMN_TYPE',
        object: 'users.tenant_id',
        expected: 'character varying(50)',
        actual: 'integer',
      },
    ]);

    const clusters = await h.services().fingerprints.schemaDrift(null);
    expect(clusters.map((c) => ({ version: c.version, expected: c.expected, n: c.tenantCount }))).toEqual([
      { version: '0002', expected: true, n: 3 },
      { version: '0002', expected: false, n: 1 },
    ]);

    const latest = await run(h.service.startMigrationRun({ tenants: { ids } }, ACTOR));
    expect(latest.run).toMatchObject({ succeeded: 3, failed: 1 });
    expect(latest.byName.get('drift_002')?.error).toMatch(/^drift: COLUMN_TYPE users\.tenant_id/);
    expect(await ledgerVersions(h.database.pool, 'tenant_drift_002')).toEqual(['0001', '0002']);
    expect(await ledgerVersions(h.database.pool, 'tenant_drift_001')).toEqual(['0001', '0002', '0003']);

    await h.database.pool.query('ALTER TABLE tenant_drift_002.users ALTER COLUMN tenant_id TYPE varchar(50)');
    const repaired = await run(h.service.startVerifyRun({ tenants: { ids: [ids[2]!] } }, ACTOR));
    expect(repaired.run.status).toBe('SUCCEEDED');
    const after = await h.services().fingerprints.schemaDrift(null);
    expect(after.map((c) => ({ version: c.version, expected: c.expected, n: c.tenantCount }))).toEqual([
      { version: '0003', expected: true, n: 3 },
      { version: '0002', expected: true, n: 1 },
    ]);
    expect(after[1]?.hash).toBe(clusters[0]?.hash);
  });

  it('migrates a drifted tenant when the run says allowDrift', async () => {
    await h.startWorker();
    const ids = await h.createTenants('allowed', 1);
    await run(h.service.startMigrationRun({ targetVersion: '0001', tenants: { ids } }, ACTOR));
    await h.database.pool.query('CREATE TABLE tenant_allowed_000.legacy_notes (body text)');
    const verify = await run(h.service.startVerifyRun({ tenants: { ids } }, ACTOR));
    expect(verify.byName.get('allowed_000')?.error).toBe('drift: TABLE_EXTRA legacy_notes');
    const refused = await run(h.service.startMigrationRun({ tenants: { ids } }, ACTOR));
    expect(refused.run.failed).toBe(1);
    const allowed = await run(h.service.startMigrationRun({ tenants: { ids }, allowDrift: true }, ACTOR));
    expect(allowed.run.status).toBe('SUCCEEDED');
    expect(await ledgerVersions(h.database.pool, 'tenant_allowed_000')).toEqual(['0001', '0002', '0003']);
    // Still drifted, and recorded as such after the move.
    expect((await databasesOf(ids)).get('allowed_000')?.fingerprintMatches).toBe(false);
  });
});
