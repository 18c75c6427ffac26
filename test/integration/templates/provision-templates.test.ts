import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, withDatabase } from '../../../src/config.js';
import { createPgPool, quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { createExpectedFingerprintStore } from '../../../src/fingerprints/expected-fingerprint-store.js';
import { catalogChecksumOf } from '../../../src/fingerprints/expected-fingerprints.js';
import { readSchemaFingerprint } from '../../../src/fingerprints/read-schema.js';
import type { Logger } from '../../../src/logger.js';
import { loadCatalog, type MigrationCatalog } from '../../../src/migrations/index.js';
import { ownershipMarker } from '../../../src/tenants/ownership.js';
import { provisionTenant, type TenantDatabaseLocation } from '../../../src/tenants/provisioner.js';
import { templateDatabaseOf } from '../../../src/templates/database-template.js';
import { createProvisionTemplates } from '../../../src/templates/provision-templates.js';
import { sparePrefixOf } from '../../../src/templates/spare-schemas.js';
import { createSchemaTemplateStore } from '../../../src/templates/template-store.js';
import { useTestDatabase } from '../../helpers/database.js';
import { expectEventually } from '../../helpers/eventually.js';
import { useSecondServer } from '../../helpers/second-server.js';
import { testServerUrl } from '../../helpers/template.js';

const CATALOG_50 = path.resolve(import.meta.dirname, '../../../bench/fixtures/catalog-50');
const deploymentId = randomUUID();

interface LedgerRow {
  version: string;
  name: string;
  checksum: string;
  execution_ms: number;
}

/** A logger that keeps what was warned. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const logger: Logger & { warnings: string[] } = {
    warnings,
    debug: () => undefined,
    info: () => undefined,
    warn: (message) => void warnings.push(message),
    error: (message) => void warnings.push(message),
    child: () => logger,
  };
  return logger;
}

describe('provisioning from a template', () => {
  const db = useTestDatabase({ controlPlane: true });
  const second = useSecondServer();
  const databases: string[] = [];
  const templateDatabases: string[] = [];
  let catalog: MigrationCatalog;

  beforeAll(async () => {
    catalog = await loadCatalog(CATALOG_50);
  });

  afterAll(async () => {
    // Template databases refuse DROP until they are no longer templates.
    const drop = async (url: string, names: readonly string[]) =>
      withConnection(url, async (client) => {
        for (const name of names) {
          await client
            .query(`ALTER DATABASE ${quoteDatabase(name)} WITH IS_TEMPLATE false`)
            .catch(() => undefined);
          await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(name)} WITH (FORCE)`);
        }
      });
    const template = templateDatabaseOf(deploymentId, catalogChecksumOf(catalog));
    await drop(testServerUrl(), [...databases, template, ...templateDatabases]);
    await drop(withDatabase(second.url, 'postgres'), [template]);
    // DROP DATABASE waits for a checkpoint: slow on a busy machine.
  }, 300_000);

  function templatesWith(logger: Logger, env: Record<string, string> = {}) {
    return createProvisionTemplates({
      store: createSchemaTemplateStore(db.pool),
      expectedStore: createExpectedFingerprintStore(db.pool),
      // Spares only where a test asks for them: they are made in the background.
      config: loadConfig({ PROVISION_SPARE_SCHEMAS: '0', ...env }),
      logger,
    });
  }

  function schemaLocation(schema: string): TenantDatabaseLocation {
    return { isolation: 'SCHEMA', databaseName: db.name, schemaName: schema };
  }

  async function provisionSchema(
    schema: string,
    templates?: ReturnType<typeof templatesWith>,
    pool: pg.Pool = db.pool,
  ) {
    return provisionTenant({
      location: schemaLocation(schema),
      connectionString: db.url,
      pool,
      catalog,
      deploymentId,
      ...(templates ? { templates } : {}),
    });
  }

  async function ledgerOf(pool: pg.Pool, schema: string): Promise<LedgerRow[]> {
    const { rows } = await pool.query<LedgerRow>(
      `SELECT version, name, checksum, execution_ms FROM ${pg.escapeIdentifier(schema)}.control_plane_ledger ORDER BY version`,
    );
    return rows;
  }

  // The tests that alter the stored template need one: the first tenant made from it builds it.
  let warmups = 0;
  async function ensureStoredTemplate(): Promise<void> {
    const { rows } = await db.pool.query('SELECT 1 FROM control_plane.provision_templates');
    if (rows.length === 0)
      await provisionSchema(`tenant_warmup_${++warmups}`, templatesWith(recordingLogger()));
  }

  // A tenant replayed file by file, to compare with.
  let reference: Promise<unknown> | undefined;
  async function replayedReference(): Promise<string> {
    reference ??= provisionSchema('tenant_reference');
    await reference;
    return 'tenant_reference';
  }

  const withoutTimes = (rows: LedgerRow[]) => rows.map(({ execution_ms: _ms, ...row }) => row);

  // Seed data of the catalog (plans, tag presets, feature flags) and a sequence's position.
  async function dataOf(pool: pg.Pool, schema: string): Promise<unknown[]> {
    const q = pg.escapeIdentifier(schema);
    const results = await Promise.all([
      pool.query(`SELECT * FROM ${q}.plans ORDER BY code`),
      pool.query(`SELECT * FROM ${q}.tag_presets ORDER BY label`),
      pool.query(`SELECT * FROM ${q}.feature_flags ORDER BY key`),
      pool.query(`SELECT last_value, is_called FROM ${q}.task_number_seq`),
    ]);
    return results.map((result) => result.rows);
  }

  it('makes a SCHEMA tenant with exactly the fingerprint, ledger and data of a replay', async () => {
    const logger = recordingLogger();
    const templates = templatesWith(logger);
    const replayed = await provisionSchema('tenant_replayed');
    const first = await provisionSchema('tenant_templated', templates);
    const second = await provisionSchema('tenant_templated_too', templates);

    expect(logger.warnings).toEqual([]);
    expect(replayed.steps.map((s) => s.version)).toEqual(catalog.files.map((f) => f.version));
    for (const result of [first, second]) {
      expect(result).toMatchObject({ fromVersion: null, toVersion: '0050' });
      expect(result.steps.map((s) => s.version)).toEqual(catalog.files.map((f) => f.version));
    }
    const expectedLedger = withoutTimes(await ledgerOf(db.pool, 'tenant_replayed'));
    for (const schema of ['tenant_templated', 'tenant_templated_too']) {
      const ledger = await ledgerOf(db.pool, schema);
      expect(withoutTimes(ledger)).toEqual(expectedLedger);
      // Made from the template, not file by file.
      expect(ledger.every((row) => row.execution_ms === 0)).toBe(true);
      expect((await readSchemaFingerprint(db.pool, schema)).hash).toBe(
        (await readSchemaFingerprint(db.pool, 'tenant_replayed')).hash,
      );
      expect(await dataOf(db.pool, schema)).toEqual(await dataOf(db.pool, 'tenant_replayed'));
      const marker = await db.pool.query(`SELECT obj_description($1::regnamespace, 'pg_namespace') AS m`, [
        schema,
      ]);
      expect(marker.rows[0]?.m).toBe(ownershipMarker(deploymentId));
    }
    // Built once, kept in the control plane; its scratch schema is gone.
    const stored = await db.pool.query(`SELECT catalog_checksum FROM control_plane.provision_templates`);
    expect(stored.rows.map((row) => row.catalog_checksum)).toEqual([catalogChecksumOf(catalog)]);
    const scratch = await db.pool.query(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cp_template_%'`,
    );
    expect(scratch.rows).toEqual([]);
  });

  it('carries on from the ledger when a tenant made from the template is provisioned again', async () => {
    const templates = templatesWith(recordingLogger());
    await provisionSchema('tenant_retried', templates);
    const again = await provisionSchema('tenant_retried', templates);
    expect(again).toEqual({ fromVersion: '0050', toVersion: '0050', steps: [] });
  });

  it('falls back to the replay, logged, when the template does not make the expected structure', async () => {
    await ensureStoredTemplate();
    const replayed = await replayedReference();
    // A template that makes one table too many: its fingerprint is not the catalog's.
    const { rows } = await db.pool.query<{ template_sql: string; placeholder: string }>(
      'SELECT template_sql, placeholder FROM control_plane.provision_templates',
    );
    const original = rows[0]!.template_sql;
    await db.pool.query('UPDATE control_plane.provision_templates SET template_sql = $1', [
      `${original};\nCREATE TABLE ${rows[0]!.placeholder}.intruder (id int)`,
    ]);
    try {
      const logger = recordingLogger();
      const templates = templatesWith(logger);
      const result = await provisionSchema('tenant_mismatch', templates);
      expect(logger.warnings).toEqual([
        'the schema template did not apply; provisioning replays the catalog',
      ]);
      // The template rests a while: the next tenant replays without trying it again.
      await provisionSchema('tenant_mismatch_next', templates);
      expect(logger.warnings).toHaveLength(1);
      expect((await ledgerOf(db.pool, 'tenant_mismatch_next')).some((row) => row.execution_ms > 0)).toBe(
        true,
      );
      expect(result.toVersion).toBe('0050');
      const ledger = await ledgerOf(db.pool, 'tenant_mismatch');
      expect(ledger.map((row) => row.version)).toEqual(catalog.files.map((f) => f.version));
      // Replayed: file by file, and without the template's extra table.
      expect(ledger.some((row) => row.execution_ms > 0)).toBe(true);
      const intruder = await db.pool.query(`SELECT to_regclass('tenant_mismatch.intruder') AS t`);
      expect(intruder.rows[0]?.t).toBeNull();
      expect((await readSchemaFingerprint(db.pool, 'tenant_mismatch')).hash).toBe(
        (await readSchemaFingerprint(db.pool, replayed)).hash,
      );
    } finally {
      await db.pool.query('UPDATE control_plane.provision_templates SET template_sql = $1', [original]);
    }
  });

  it('leaves nothing behind when its connection dies in the middle of the template, and the replay makes the tenant', async () => {
    await ensureStoredTemplate();
    const replayed = await replayedReference();
    // Halfway through the template the transaction sleeps; the test kills its connection there.
    const { rows } = await db.pool.query<{ template_sql: string }>(
      'SELECT template_sql FROM control_plane.provision_templates',
    );
    const original = rows[0]!.template_sql;
    const halfway = original.indexOf('\n-- TABLE DATA ');
    expect(halfway).toBeGreaterThan(0);
    await db.pool.query('UPDATE control_plane.provision_templates SET template_sql = $1', [
      `${original.slice(0, halfway)};\nSELECT pg_sleep(30);\n${original.slice(halfway)}`,
    ]);
    try {
      const logger = recordingLogger();
      // A pool as the worker's: a connection killed while checked out fails its query, nothing more.
      const pool = createPgPool({ connectionString: db.url, max: 2, applicationName: 'test', logger });
      const provisioning = provisionSchema('tenant_killed', templatesWith(logger), pool);
      await killWhenSleeping(db.pool);
      const result = await provisioning.finally(() => pool.end());
      logger.warnings.splice(logger.warnings.indexOf('PostgreSQL connection lost; the pool replaces it'), 1);
      expect(logger.warnings).toEqual([
        'the schema template did not apply; provisioning replays the catalog',
      ]);
      expect(result.steps.map((s) => s.version)).toEqual(catalog.files.map((f) => f.version));
      expect(withoutTimes(await ledgerOf(db.pool, 'tenant_killed'))).toEqual(
        withoutTimes(await ledgerOf(db.pool, replayed)),
      );
      expect((await readSchemaFingerprint(db.pool, 'tenant_killed')).hash).toBe(
        (await readSchemaFingerprint(db.pool, replayed)).hash,
      );
    } finally {
      await db.pool.query('UPDATE control_plane.provision_templates SET template_sql = $1', [original]);
    }
  });

  it('makes a tenant of a five-file catalog from its template with the default settings', async () => {
    const short = await loadCatalog(path.resolve(import.meta.dirname, '../../../bench/fixtures/catalog'));
    expect(short.files).toHaveLength(5);
    const logger = recordingLogger();
    for (const schema of ['tenant_short_first', 'tenant_short_second']) {
      await provisionTenant({
        location: schemaLocation(schema),
        connectionString: db.url,
        pool: db.pool,
        catalog: short,
        deploymentId,
        templates: templatesWith(logger),
      });
      // Stamped from the template (execution_ms 0), not replayed file by file.
      expect(await ledgerOf(db.pool, schema)).toEqual(
        short.files.map((file) => expect.objectContaining({ version: file.version, execution_ms: 0 })),
      );
    }
    expect(logger.warnings).toEqual([]);
  });

  it('replays catalogs shorter than PROVISION_TEMPLATE_MIN_FILES, and every catalog with PROVISION_TEMPLATE=off', async () => {
    for (const [schema, env] of [
      ['tenant_short', { PROVISION_TEMPLATE_MIN_FILES: '51' }],
      ['tenant_off', { PROVISION_TEMPLATE: 'off' }],
    ] as const) {
      await provisionSchema(schema, templatesWith(recordingLogger(), env));
      expect((await ledgerOf(db.pool, schema)).some((row) => row.execution_ms > 0)).toBe(true);
    }
  });

  it('uses the template under a custom LEDGER_TABLE when the catalog has a table named like the default ledger', async () => {
    const ownLedger = await loadCatalog(path.resolve(import.meta.dirname, '../../fixtures/runs/own_ledger'));
    const logger = recordingLogger();
    const templates = templatesWith(logger, {
      LEDGER_TABLE: 'tenant_ledger',
      PROVISION_TEMPLATE_MIN_FILES: '1',
    });
    await provisionTenant({
      location: schemaLocation('tenant_own_ledger'),
      connectionString: db.url,
      pool: db.pool,
      catalog: ownLedger,
      deploymentId,
      ledgerTable: 'tenant_ledger',
      templates,
    });
    // Made from the template, not replayed after a mismatch.
    expect(logger.warnings).toEqual([]);
    const { rows } = await db.pool.query<{ version: string; execution_ms: number }>(
      'SELECT version, execution_ms FROM tenant_own_ledger.tenant_ledger ORDER BY version',
    );
    expect(rows).toEqual(ownLedger.files.map((file) => ({ version: file.version, execution_ms: 0 })));
    const catalogTable = await db.pool.query(
      `SELECT to_regclass('tenant_own_ledger.control_plane_ledger') AS t`,
    );
    expect(catalogTable.rows[0]?.t).not.toBeNull();
  });

  describe('spare schemas', () => {
    const spareNames = async () => {
      const prefix = sparePrefixOf(deploymentId, catalogChecksumOf(catalog));
      const { rows } = await db.pool.query<{ nspname: string }>(
        'SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname',
        [prefix],
      );
      return rows.map((row) => row.nspname);
    };

    async function expectLikeReplay(schema: string): Promise<void> {
      const replayed = await replayedReference();
      const ledger = await ledgerOf(db.pool, schema);
      expect(withoutTimes(ledger)).toEqual(withoutTimes(await ledgerOf(db.pool, replayed)));
      expect(ledger.every((row) => row.execution_ms === 0)).toBe(true);
      expect((await readSchemaFingerprint(db.pool, schema)).hash).toBe(
        (await readSchemaFingerprint(db.pool, replayed)).hash,
      );
      expect(await dataOf(db.pool, schema)).toEqual(await dataOf(db.pool, replayed));
      const marker = await db.pool.query(`SELECT obj_description($1::regnamespace, 'pg_namespace') AS m`, [
        schema,
      ]);
      expect(marker.rows[0]?.m).toBe(ownershipMarker(deploymentId));
    }

    it('renames a spare made ahead into the new tenant, exactly as a replay would make it, and makes another', async () => {
      const logger = recordingLogger();
      const templates = templatesWith(logger, { PROVISION_SPARE_SCHEMAS: '2' });
      await provisionSchema('tenant_before_spares', templates);
      await templates.sparesSettled();
      const spares = await spareNames();
      expect(spares).toHaveLength(2);

      await provisionSchema('tenant_from_spare', templates);
      const left = await spareNames();
      // One of the two is now the tenant's schema.
      expect(spares.filter((spare) => !left.includes(spare))).toHaveLength(1);
      await expectLikeReplay('tenant_from_spare');
      await templates.sparesSettled();
      expect(await spareNames()).toHaveLength(2);
      expect(logger.warnings).toEqual([]);
    });

    it('tops the spares up again when a tenant takes one while spares are being made', async () => {
      const logger = recordingLogger();
      const templates = templatesWith(logger, { PROVISION_SPARE_SCHEMAS: '2' });
      await provisionSchema('tenant_topup_warmup', templates);
      await templates.sparesSettled();
      expect(await spareNames()).toHaveLength(2);
      // The second takes its spare while the first one's is still being made (fifty files).
      await provisionSchema('tenant_topup_one', templates);
      await provisionSchema('tenant_topup_two', templates);
      await expectLikeReplay('tenant_topup_two');
      await templates.sparesSettled();
      expect(await spareNames()).toHaveLength(2);
      expect(logger.warnings).toEqual([]);
    });

    it('gives two tenants provisioned at once two different spares', async () => {
      const templates = templatesWith(recordingLogger(), { PROVISION_SPARE_SCHEMAS: '2' });
      await provisionSchema('tenant_spare_warmup', templates);
      await templates.sparesSettled();
      const spares = await spareNames();
      expect(spares).toHaveLength(2);
      await Promise.all([
        provisionSchema('tenant_spare_one', templates),
        provisionSchema('tenant_spare_two', templates),
      ]);
      await expectLikeReplay('tenant_spare_one');
      await expectLikeReplay('tenant_spare_two');
      const left = await spareNames();
      expect(spares.filter((spare) => left.includes(spare))).toEqual([]);
      await templates.sparesSettled();
    });

    it('drops a spare that is not the expected structure, logged, and makes the tenant from the template', async () => {
      const logger = recordingLogger();
      const templates = templatesWith(logger, { PROVISION_SPARE_SCHEMAS: '1' });
      await provisionSchema('tenant_spare_warmup_2', templates);
      await templates.sparesSettled();
      const [spare] = await spareNames();
      await db.pool.query(`CREATE TABLE ${pg.escapeIdentifier(spare!)}.intruder (id int)`);

      await provisionSchema('tenant_not_from_bad_spare', templates);
      expect(logger.warnings).toEqual(['a spare schema is not the expected structure; it is dropped']);
      await expectLikeReplay('tenant_not_from_bad_spare');
      const intruder = await db.pool.query(`SELECT to_regclass('tenant_not_from_bad_spare.intruder') AS t`);
      expect(intruder.rows[0]?.t).toBeNull();
      await templates.sparesSettled();
      expect(await spareNames()).not.toContain(spare);
    });
  });

  describe('DATABASE isolation', () => {
    async function provisionDatabase(
      serverUrl: string,
      name: string,
      withTemplates: boolean | ReturnType<typeof templatesWith>,
    ) {
      const connectionString = withDatabase(serverUrl, name);
      const pool = new pg.Pool({ connectionString, max: 2 });
      try {
        const result = await provisionTenant({
          location: { isolation: 'DATABASE', databaseName: name, schemaName: null },
          connectionString,
          pool,
          catalog,
          deploymentId,
          ...(withTemplates === true
            ? { templates: templatesWith(recordingLogger()) }
            : withTemplates
              ? { templates: withTemplates }
              : {}),
        });
        return {
          result,
          ledger: await ledgerOf(pool, 'public'),
          fingerprint: await readSchemaFingerprint(pool, 'public'),
          data: await dataOf(pool, 'public'),
        };
      } finally {
        await pool.end();
      }
    }

    it(
      'copies a template database with exactly the fingerprint and ledger of a replay, on both servers',
      { timeout: 240_000 },
      async () => {
        const suffix = randomBytes(3).toString('hex');
        const names = [`cpt_rep_${suffix}`, `cpt_tpl1_${suffix}`, `cpt_tpl2_${suffix}`];
        databases.push(...names);
        const [replayedName, firstName, secondName] = names as [string, string, string];
        const replayed = await provisionDatabase(db.url, replayedName, false);
        const first = await provisionDatabase(db.url, firstName, true);
        const again = await provisionDatabase(db.url, secondName, true);
        for (const made of [first, again]) {
          expect(withoutTimes(made.ledger)).toEqual(withoutTimes(replayed.ledger));
          expect(made.ledger.every((row) => row.execution_ms === 0)).toBe(true);
          expect(made.fingerprint.hash).toBe(replayed.fingerprint.hash);
          expect(made.data).toEqual(replayed.data);
          expect(made.result.steps).toHaveLength(50);
        }
        const template = templateDatabaseOf(deploymentId, catalogChecksumOf(catalog));
        const flags = await db.pool.query(
          `SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1`,
          [template],
        );
        expect(flags.rows).toEqual([{ datistemplate: true, datallowconn: false }]);

        // The second server builds its own template and copies it.
        const elsewhere = `cpt_tpl3_${suffix}`;
        second.dropAfter(elsewhere);
        const remote = await provisionDatabase(second.url, elsewhere, true);
        expect(remote.fingerprint.hash).toBe(replayed.fingerprint.hash);
        expect(withoutTimes(remote.ledger)).toEqual(withoutTimes(replayed.ledger));
        expect(remote.ledger.every((row) => row.execution_ms === 0)).toBe(true);
        const marker = await withConnection(withDatabase(second.url, 'postgres'), (client) =>
          client.query(
            `SELECT shobj_description(oid, 'pg_database') AS m FROM pg_database WHERE datname = $1`,
            [elsewhere],
          ),
        );
        expect(marker.rows[0]?.m).toBe(ownershipMarker(deploymentId));
      },
    );

    it(
      'replays into a plain database when the template database went, and builds it again for the next',
      { timeout: 240_000 },
      async () => {
        const suffix = randomBytes(3).toString('hex');
        const names = [`cpt_g1_${suffix}`, `cpt_g2_${suffix}`, `cpt_g3_${suffix}`];
        databases.push(...names);
        const [first, afterDrop, rebuilt] = names as [string, string, string];
        const templates = templatesWith(recordingLogger());
        const copied = await provisionDatabase(db.url, first, templates);
        expect(copied.ledger.every((row) => row.execution_ms === 0)).toBe(true);
        const template = templateDatabaseOf(deploymentId, catalogChecksumOf(catalog));
        await withConnection(testServerUrl(), async (client) => {
          await client.query(`ALTER DATABASE ${quoteDatabase(template)} WITH IS_TEMPLATE false`);
          await client.query(`DROP DATABASE ${quoteDatabase(template)}`);
        });

        const replayed = await provisionDatabase(db.url, afterDrop, templates);
        expect(replayed.result.steps).toHaveLength(50);
        expect(replayed.ledger.some((row) => row.execution_ms > 0)).toBe(true);
        expect(replayed.fingerprint.hash).toBe(copied.fingerprint.hash);

        const again = await provisionDatabase(db.url, rebuilt, templates);
        expect(again.ledger.every((row) => row.execution_ms === 0)).toBe(true);
        expect(again.fingerprint.hash).toBe(copied.fingerprint.hash);
      },
    );

    it(
      "copies a template database with the deployment's own ledger table when LEDGER_TABLE changes",
      { timeout: 240_000 },
      async () => {
        const suffix = randomBytes(3).toString('hex');
        const [before, after] = [`cpt_l1_${suffix}`, `cpt_l2_${suffix}`];
        databases.push(before, after);
        // A template database built under the default ledger table.
        await provisionDatabase(db.url, before, true);
        const logger = recordingLogger();
        const templates = templatesWith(logger, { LEDGER_TABLE: 'tenant_ledger' });
        const connectionString = withDatabase(db.url, after);
        const pool = new pg.Pool({ connectionString, max: 2 });
        try {
          await provisionTenant({
            location: { isolation: 'DATABASE', databaseName: after, schemaName: null },
            connectionString,
            pool,
            catalog,
            deploymentId,
            ledgerTable: 'tenant_ledger',
            templates,
          });
          const { rows } = await pool.query<{ version: string; execution_ms: number }>(
            'SELECT version, execution_ms FROM public.tenant_ledger ORDER BY version',
          );
          // Copied from a template of its own ledger table: no replay, no mismatch.
          expect(rows).toEqual(catalog.files.map((file) => ({ version: file.version, execution_ms: 0 })));
          const stale = await pool.query(`SELECT to_regclass('public.control_plane_ledger') AS t`);
          expect(stale.rows[0]?.t).toBeNull();
          expect(logger.warnings).toEqual([]);
        } finally {
          await pool.end();
        }
        const ownTemplate = templateDatabaseOf(deploymentId, catalogChecksumOf(catalog), 'tenant_ledger');
        expect(ownTemplate).not.toBe(templateDatabaseOf(deploymentId, catalogChecksumOf(catalog)));
        templateDatabases.push(ownTemplate);
      },
    );
  });
});

/** Waits for a backend of this database sleeping in pg_sleep, then terminates it. */
async function killWhenSleeping(pool: pg.Pool): Promise<void> {
  await expectEventually(
    async () => {
      const { rows } = await pool.query<{ killed: boolean }>(
        `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event = 'PgSleep'`,
      );
      expect(rows[0]?.killed).toBe(true);
    },
    { timeoutMs: 60_000 },
  );
}
