/**
 * adoptTenants never takes the control plane's own schemas: the provisioning templates' spare
 * schemas (`cp_spare_…`, complete tenants with a ledger, waiting to be renamed) and a catalog's
 * template scratch schema (`cp_template_…`), nor the system's (pg_*, information_schema), the
 * extensions schema, or a schema already registered, whatever the pattern, dry run or not.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogChecksumOf } from '../../../src/fingerprints/expected-fingerprints.js';
import { EXTENSIONS_SCHEMA, migrateUp, schemaLockKey } from '../../../src/migrations/index.js';
import { scratchSchemaOf } from '../../../src/templates/schema-template.js';
import { sparePrefixOf } from '../../../src/templates/spare-schemas.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { ledgerVersions, waitForRunEnd } from '../runs/run-assertions.js';

describe('adoptTenants and the control plane’s own schemas', () => {
  const h = useRunHarness('fingerprint');
  // The names the templates give them (any deployment's spares: two may share a server).
  let spare: string;
  let template: string;
  // Registered the way rows from before database servers are (no server id until the next start).
  const registered = 'tenant_registered_000';
  // A user's schemas, adoptable: one whose name merely starts like ours.
  const candidates = ['cp_legacy', 'legacy_a'];
  // Keeps a temporary schema (pg_temp_N, pg_toast_temp_N) alive during the test.
  let holder: pg.Client;

  /** Builds `schema` with the engine: the catalog up to `version` and our ledger, as a spare has. */
  async function migrate(schema: string, version: string): Promise<void> {
    const target = {
      schema,
      lockKey: schemaLockKey(h.database.name, schema),
      ledgerTable: h.config.ledgerTable,
    };
    await migrateUp(h.database.pool, target, h.catalog, { toVersion: version });
  }

  async function registrations() {
    const databases = await h.db.tenantDatabase.findMany({ select: { schemaName: true } });
    return databases.map((d) => d.schemaName).sort();
  }

  beforeAll(async () => {
    const checksum = catalogChecksumOf(h.catalog);
    spare = `${sparePrefixOf(randomUUID(), checksum)}0a1b2c3d`;
    template = scratchSchemaOf(checksum);
    for (const schema of [spare, template]) await migrate(schema, h.catalog.latest!);
    await migrate('cp_legacy', '0001');
    await migrate('legacy_a', '0002');
    await h.createTenants('registered', 1);
    await migrate(registered, '0003');
    await h.database.pool.query(`CREATE SCHEMA IF NOT EXISTS ${EXTENSIONS_SCHEMA}`);
    holder = new pg.Client({ connectionString: h.database.url });
    await holder.connect();
    await holder.query('CREATE TEMP TABLE held (id int PRIMARY KEY, body text)');
  });

  afterAll(async () => {
    await holder?.end();
  });

  it('lists neither spare nor template schemas in a dry run with a catch-all pattern', async () => {
    await h.startWorker();
    const { rows } = await h.database.pool.query<{ n: string }>(
      `SELECT nspname AS n FROM pg_namespace WHERE nspname LIKE 'pg\\_temp\\_%' OR nspname = $1`,
      [EXTENSIONS_SCHEMA],
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const before = await registrations();
    for (const [pattern, expected] of [
      ['%_%', candidates],
      ['cp\\_%', ['cp_legacy']],
    ] as const) {
      const started = await h
        .services()
        .adoption.adoptTenants({ schemaPattern: pattern, historySource: 'OWN', dryRun: true }, ACTOR);
      const run = await waitForRunEnd(h.db, started.id);
      const targets = await h.db.migrationRunTarget.findMany({
        where: { runId: run.id },
        orderBy: { schemaName: 'asc' },
      });
      expect(
        targets.map((t) => t.schemaName),
        pattern,
      ).toEqual(expected);
      expect(run).toMatchObject({ status: 'SUCCEEDED', dryRun: true });
    }
    expect(await registrations()).toEqual(before);
  });

  it('registers only the user’s schemas with a catch-all pattern and leaves ours untouched', async () => {
    await h.startWorker();
    const started = await h
      .services()
      .adoption.adoptTenants({ schemaPattern: '%_%', historySource: 'OWN' }, ACTOR);
    const run = await waitForRunEnd(h.db, started.id);
    expect(run).toMatchObject({ kind: 'ADOPT', status: 'SUCCEEDED', total: 2, succeeded: 2 });
    expect(await registrations()).toEqual([...candidates, registered].sort());
    const databases = await h.db.tenantDatabase.findMany({
      include: { tenant: true },
      orderBy: { schemaName: 'asc' },
    });
    expect(databases.map((d) => [d.schemaName, d.tenant.name, d.tenant.status, d.schemaVersion])).toEqual([
      ['cp_legacy', 'cp_legacy', 'ACTIVE', '0001'],
      ['legacy_a', 'legacy_a', 'ACTIVE', '0002'],
      [registered, 'registered_000', 'ACTIVE', null],
    ]);
    // Ours keep the ledger they had; nothing else can be adopted now.
    expect(await ledgerVersions(h.database.pool, spare)).toEqual(['0001', '0002', '0003']);
    expect(await ledgerVersions(h.database.pool, template)).toEqual(['0001', '0002', '0003']);
    await expect(
      h.services().adoption.adoptTenants({ schemaPattern: '%_%', dryRun: true }, ACTOR),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('skips schemas registered at the same place under another server entry', async () => {
    // The same PostgreSQL under a second name: its schemas are the ones registered on `default`.
    const alias = await h.servers.registerDatabaseServer({ name: 'alias', connectionString: h.database.url });
    const before = await registrations();
    await expect(
      h.services().adoption.adoptTenants({ server: alias.id, schemaPattern: '%_%', dryRun: true }, ACTOR),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      h.services().adoption.adoptTenants({ server: alias.name, schemaPattern: 'legacy_%' }, ACTOR),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await registrations()).toEqual(before);
  });
});
