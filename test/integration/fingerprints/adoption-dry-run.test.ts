/**
 * adoptTenants beyond the acceptance: a dry run registers nothing (its targets name the schemas,
 * not tenants) and still reports per schema what adoption would do; `server` adopts the schemas
 * of that server (the second PostgreSQL), not the default one's.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { ledgerVersions, waitForRunEnd } from '../runs/run-assertions.js';
import { useSecondServer } from '../../helpers/second-server.js';

const REVISION_OF: Record<string, string> = { '0001': 'ae1027a6', '0002': '27c6a30d', '0003': 'c3d2f1e0' };
const VERSION_MAP = Object.fromEntries(Object.entries(REVISION_OF).map(([ours, theirs]) => [theirs, ours]));

describe('adoptTenants', () => {
  const h = useRunHarness('fingerprint');
  const second = useSecondServer();
  let secondPool: pg.Pool;

  /** Builds `schema` by hand at `version`, with Alembic's history table. */
  async function buildSchema(pool: pg.Pool, schema: string, version: string): Promise<void> {
    const statements = h.catalog.files.filter((f) => f.version <= version).map((f) => f.upSql);
    await pool.query(
      `BEGIN; CREATE SCHEMA ${schema}; SET LOCAL search_path TO ${schema}; ${statements.join(';\n')};
       CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
       INSERT INTO alembic_version VALUES ('${REVISION_OF[version]}'); COMMIT`,
    );
  }

  async function counts() {
    return { tenants: await h.db.tenant.count(), databases: await h.db.tenantDatabase.count() };
  }

  beforeAll(async () => {
    secondPool = new pg.Pool({ connectionString: second.url, max: 2 });
    await buildSchema(h.database.pool, 'dry_a', '0002');
    await buildSchema(h.database.pool, 'dry_b', '0003');
    await h.database.pool.query('ALTER TABLE dry_b.users ALTER COLUMN tenant_id TYPE integer USING 0');
    // Same names on both servers: only the named server's are adopted.
    await buildSchema(secondPool, 'remote_a', '0001');
    await buildSchema(secondPool, 'remote_b', '0003');
    await buildSchema(h.database.pool, 'remote_a', '0002');
  });

  afterAll(async () => {
    await secondPool?.end();
  });

  it('registers nothing in a dry run and reports per schema what it would do', async () => {
    await h.startWorker();
    const before = await counts();
    const started = await h.services().adoption.adoptTenants(
      {
        schemaPattern: 'dry_%',
        namePrefix: 'dry_',
        historySource: 'ALEMBIC',
        versionMap: VERSION_MAP,
        dryRun: true,
      },
      ACTOR,
    );
    const run = await waitForRunEnd(h.db, started.id);
    expect(run).toMatchObject({ kind: 'ADOPT', dryRun: true, total: 2, succeeded: 1, failed: 1 });
    expect(await counts()).toEqual(before);

    const targets = await h.db.migrationRunTarget.findMany({
      where: { runId: run.id },
      orderBy: { position: 'asc' },
    });
    expect(
      targets.map((t) => ({
        tenantId: t.tenantId,
        schemaName: t.schemaName,
        status: t.status,
        toVersion: t.toVersion,
        plannedSql: t.plannedSql,
        error: t.error,
      })),
    ).toEqual([
      {
        tenantId: null,
        schemaName: 'dry_a',
        status: 'SUCCEEDED',
        toVersion: '0002',
        plannedSql:
          '-- would stamp dry_a at 0002 (ALEMBIC: alembic_version says 27c6a30d (0002 by the versionMap))',
        error: null,
      },
      {
        tenantId: null,
        schemaName: 'dry_b',
        status: 'FAILED',
        toVersion: null,
        plannedSql: null,
        error:
          'adoption refused (ALEMBIC): alembic_version says c3d2f1e0 (0003 by the versionMap), but the structure differs from 0003: COLUMN_TYPE users.tenant_id expected "character varying(50)" actual "integer"',
      },
    ]);
    expect(await ledgerVersions(h.database.pool, 'dry_a')).toEqual([]);

    // Nothing was registered, so the real adoption takes the same schemas afterwards.
    const adopted = await waitForRunEnd(
      h.db,
      (
        await h
          .services()
          .adoption.adoptTenants(
            { schemaPattern: 'dry_a', namePrefix: 'dry_', historySource: 'ALEMBIC', versionMap: VERSION_MAP },
            ACTOR,
          )
      ).id,
    );
    expect(adopted).toMatchObject({ status: 'SUCCEEDED', total: 1 });
    expect(await ledgerVersions(h.database.pool, 'dry_a')).toEqual(['0001', '0002']);
  });

  it('adopts the schemas of the named server, not the default one', async () => {
    await h.startWorker();
    const server = await h.servers.registerDatabaseServer({ name: 'second', connectionString: second.url });
    const started = await h
      .services()
      .adoption.adoptTenants(
        { server: server.id, schemaPattern: 'remote_%', historySource: 'ALEMBIC', versionMap: VERSION_MAP },
        ACTOR,
      );
    const run = await waitForRunEnd(h.db, started.id);
    expect(run).toMatchObject({ status: 'SUCCEEDED', total: 2 });
    const databases = await h.db.tenantDatabase.findMany({
      where: { schemaName: { startsWith: 'remote_' } },
      include: { tenant: true },
      orderBy: { schemaName: 'asc' },
    });
    expect(
      databases.map((d) => [
        d.schemaName,
        d.serverId,
        d.port,
        d.databaseName,
        d.schemaVersion,
        d.tenant.status,
      ]),
    ).toEqual([
      ['remote_a', server.id, 5433, second.name, '0001', 'ACTIVE'],
      ['remote_b', server.id, 5433, second.name, '0003', 'ACTIVE'],
    ]);
    expect(await ledgerVersions(secondPool, 'remote_a')).toEqual(['0001']);
    expect(await ledgerVersions(secondPool, 'remote_b')).toEqual(['0001', '0002', '0003']);
    // The default server's schema of the same name was not touched.
    expect(await ledgerVersions(h.database.pool, 'remote_a')).toEqual([]);

    // A dry run reads the named server too; an unknown server is refused with nothing registered.
    const before = await counts();
    await expect(
      h.services().adoption.adoptTenants({ server: 'no-such-server', schemaPattern: 'remote_%' }, ACTOR),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await counts()).toEqual(before);
  });
});
