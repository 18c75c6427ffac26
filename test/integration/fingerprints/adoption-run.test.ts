import { beforeAll, describe, expect, it } from 'vitest';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { ledgerVersions, waitForRunEnd } from '../runs/run-assertions.js';

// Issue 13's acceptance, through the API's services and a real worker: 30 schemas built by hand at
// different versions with Alembic's history table, 2 of them drifted.
const SCHEMAS = Array.from({ length: 30 }, (_, i) => ({
  schema: `legacy_${String(i).padStart(2, '0')}`,
  version: `000${(i % 3) + 1}`,
}));
const REVISION_OF: Record<string, string> = { '0001': 'ae1027a6', '0002': '27c6a30d', '0003': 'c3d2f1e0' };
const VERSION_MAP = Object.fromEntries(Object.entries(REVISION_OF).map(([ours, theirs]) => [theirs, ours]));

describe('adoptTenants', () => {
  const h = useRunHarness('fingerprint', { FINGERPRINT_AFTER_TARGET: 'true' });

  beforeAll(async () => {
    for (const { schema, version } of SCHEMAS) {
      const statements = h.catalog.files.filter((f) => f.version <= version).map((f) => f.upSql);
      await h.database.pool.query(
        `BEGIN; CREATE SCHEMA ${schema}; SET LOCAL search_path TO ${schema}; ${statements.join(';\n')};
         CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
         INSERT INTO alembic_version VALUES ('${REVISION_OF[version]}'); COMMIT`,
      );
    }
    await h.database.pool.query('ALTER TABLE legacy_05.users ALTER COLUMN tenant_id TYPE integer USING 0');
    await h.database.pool.query('DROP INDEX legacy_07.idx_tasks_status');
  });

  it('registers the 28 at their true versions, names the 2, and a run to latest leaves the 2 untouched', async () => {
    await h.startWorker();
    await expect(
      h.services().adoption.adoptTenants({ schemaPattern: 'legacy_%', versionMap: ['x'] }, ACTOR),
    ).rejects.toMatchObject({ field: 'versionMap' });
    expect(await h.db.tenant.count()).toBe(1); // the system tenant only: nothing registered

    const started = await h.services().adoption.adoptTenants(
      {
        schemaPattern: 'legacy_%',
        namePrefix: 'legacy_',
        historySource: 'ALEMBIC',
        versionMap: VERSION_MAP,
      },
      ACTOR,
    );
    const run = await waitForRunEnd(h.db, started.id);
    expect(run).toMatchObject({ kind: 'ADOPT', total: 30, succeeded: 28, failed: 2 });
    const targets = await h.db.migrationRunTarget.findMany({
      where: { runId: run.id },
      include: { tenant: true },
    });
    const failed = targets.filter((t) => t.status === 'FAILED').map((t) => [t.tenant!.name, t.error]);
    expect(failed.sort()).toEqual([
      [
        '05',
        'adoption refused (ALEMBIC): alembic_version says c3d2f1e0 (0003 by the versionMap), but the structure differs from 0003: COLUMN_TYPE users.tenant_id expected "character varying(50)" actual "integer"',
      ],
      [
        '07',
        'adoption refused (ALEMBIC): alembic_version says 27c6a30d (0002 by the versionMap), but the structure differs from 0002: INDEX_MISSING idx_tasks_status',
      ],
    ]);
    const tenants = await h.db.tenant.findMany({ include: { databases: true } });
    for (const { schema, version } of SCHEMAS) {
      const tenant = tenants.find((t) => t.databases[0]?.schemaName === schema);
      if (schema === 'legacy_05' || schema === 'legacy_07') {
        expect(tenant?.status, schema).toBe('PENDING');
        continue;
      }
      expect({ status: tenant?.status, version: tenant?.databases[0]?.schemaVersion }, schema).toEqual({
        status: 'ACTIVE',
        version,
      });
    }
    expect(await ledgerVersions(h.database.pool, 'legacy_02')).toEqual(['0001', '0002', '0003']);
    expect(await ledgerVersions(h.database.pool, 'legacy_05')).toEqual([]);

    const clusters = await h.services().fingerprints.schemaDrift(null);
    expect(clusters.map((c) => [c.version, c.expected, c.tenantCount])).toEqual([
      ['0001', true, 10],
      ['0002', true, 9],
      ['0003', true, 9],
      [null, false, 1],
      [null, false, 1],
    ]);

    const latest = await waitForRunEnd(h.db, (await h.service.startMigrationRun({}, ACTOR)).id);
    expect(latest).toMatchObject({ status: 'SUCCEEDED', total: 28 });
    expect(await ledgerVersions(h.database.pool, 'legacy_00')).toEqual(['0001', '0002', '0003']);
    expect(await ledgerVersions(h.database.pool, 'legacy_07')).toEqual([]);
    const { rows } = await h.database.pool.query(
      `SELECT 1 FROM pg_indexes WHERE schemaname = 'legacy_07' AND indexname = 'idx_tasks_priority'`,
    );
    expect(rows).toEqual([]);
    const after = await h.services().fingerprints.schemaDrift(null);
    expect(after.map((c) => [c.version, c.expected, c.tenantCount])).toEqual([
      ['0003', true, 28],
      [null, false, 1],
      [null, false, 1],
    ]);
  });
});
