import { describe, expect, it } from 'vitest';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { databasesByName, ledgerVersions, runToEnd } from '../runs/run-assertions.js';

// Default settings: no FINGERPRINT_AFTER_TARGET override, so a fleet run records what it built.
describe('fingerprints recorded after each target (default settings)', () => {
  const h = useRunHarness('constraint_lookup');

  const run = (start: Promise<{ id: string }>) => runToEnd(h.db, start);
  const databasesOf = (ids: string[]) => databasesByName(h.db, ids);

  it('shows the tenants a schema-blind constraint lookup skipped as drifted, and a later run leaves them alone', async () => {
    await h.startWorker();
    const ids = await h.createTenants('lookup', 4);
    // One at a time, as a fleet run with a window of 1: the first tenant creates the constraint,
    // the other three find it (in the first tenant's schema) and skip it.
    const first = await run(
      h.service.startMigrationRun({ targetVersion: '0002', tenants: { ids }, concurrency: 1 }, ACTOR),
    );
    expect(first.run).toMatchObject({ status: 'SUCCEEDED', succeeded: 4 });
    const fks = await h.database.pool.query<{ schema: string }>(
      `SELECT n.nspname AS schema FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
        WHERE k.conname = 'projects_account_fk' AND n.nspname LIKE 'tenant_lookup_%'`,
    );
    expect(fks.rows).toHaveLength(1);
    const withFk = fks.rows[0]!.schema.replace(/^tenant_/, '');

    const databases = await databasesOf(ids);
    const skipped = [...databases.keys()].filter((name) => name !== withFk).sort();
    expect(skipped).toHaveLength(3);
    expect(databases.get(withFk)).toMatchObject({ schemaVersion: '0002', fingerprintMatches: true });
    for (const name of skipped) {
      const database = databases.get(name)!;
      expect(database).toMatchObject({ schemaVersion: '0002', fingerprintMatches: false });
      expect(database.fingerprintComputedAt).not.toBeNull();
      expect(database.fingerprintDifferences).toEqual([
        {
          kind: 'CONSTRAINT_MISSING',
          object: 'projects.projects_account_fk',
          expected: 'FOREIGN KEY (account_id) REFERENCES accounts(id)',
          actual: null,
        },
      ]);
    }
    const clusters = await h.services().fingerprints.schemaDrift(null);
    expect(clusters.map((c) => ({ version: c.version, expected: c.expected, n: c.tenantCount }))).toEqual([
      { version: '0002', expected: true, n: 1 },
      { version: '0002', expected: false, n: 3 },
    ]);

    // A MIGRATE run to the latest version moves the one that matches and refuses the drifted three.
    const latest = await run(h.service.startMigrationRun({ tenants: { ids } }, ACTOR));
    expect(latest.run).toMatchObject({ status: 'FAILED', succeeded: 1, failed: 3 });
    expect(await ledgerVersions(h.database.pool, `tenant_${withFk}`)).toEqual(['0001', '0002', '0003']);
    for (const name of skipped) {
      expect(latest.byName.get(name)?.error).toBe(
        'drift: CONSTRAINT_MISSING projects.projects_account_fk (allowDrift: true migrates it anyway)',
      );
      expect(await ledgerVersions(h.database.pool, `tenant_${name}`)).toEqual(['0001', '0002']);
    }

    // allowDrift moves them, and they are still recorded as drifted at the new version.
    const allowed = await run(h.service.startMigrationRun({ tenants: { ids }, allowDrift: true }, ACTOR));
    expect(allowed.run).toMatchObject({ status: 'SUCCEEDED', succeeded: 4 });
    const after = await databasesOf(ids);
    for (const name of skipped) {
      expect(after.get(name)).toMatchObject({ schemaVersion: '0003', fingerprintMatches: false });
    }
    expect(after.get(withFk)).toMatchObject({ schemaVersion: '0003', fingerprintMatches: true });
  });
});
