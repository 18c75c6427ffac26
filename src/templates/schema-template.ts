/**
 * Schema templates (SCHEMA isolation). PostgreSQL has no template for a schema, so the template is
 * the catalog's end state captured once: the catalog replayed by the engine into a scratch schema
 * on the tenant server (exactly as a provisioning would), checked against the expected fingerprint
 * of the catalog's latest version, dumped by pg_dump (objects and data, the ledger left out) and
 * dropped. A new tenant then gets that SQL, its ledger stamped with every file and checksum, and its
 * fingerprint read, in one transaction that commits only when the fingerprint is the expected one.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { runPgTool, toolConnectionOf } from '../backups/pg-commands.js';
import { resolvePgTools } from '../backups/pg-tools.js';
import { quoteSchema } from '../db/pg.js';
import { AppError } from '../errors.js';
import {
  describeSchemaSql,
  fingerprintFromResults,
  readSchemaFingerprint,
} from '../fingerprints/read-schema.js';
import type { SchemaFingerprint } from '../fingerprints/schema-description.js';
import {
  ledgerTableOf,
  advisoryLockKey,
  migrateUp,
  schemaLockKey,
  withTargetTransaction,
} from '../migrations/index.js';
import type { MigrateResult, MigrationCatalog, MigrationTarget } from '../migrations/index.js';
import { mentionsExtension, prepareDatabaseSql } from '../migrations/extensions.js';
import { ensureAndReadLedgerSql, insertLedgerEntriesSql } from '../migrations/ledger.js';
import { renderSchemaTemplate, schemaTemplateFromDump } from './schema-template-sql.js';
import type { StoredSchemaTemplate } from './template-store.js';

/** A template's structure is not the expected one; nothing was committed. */
export class TemplateMismatchError extends AppError<'TEMPLATE_MISMATCH'> {
  constructor(
    readonly schema: string,
    readonly expectedHash: string,
    readonly actualHash: string,
  ) {
    super(
      'TEMPLATE_MISMATCH',
      `the structure of ${schema} made from the template has fingerprint ${actualHash}, expected ${expectedHash}`,
    );
  }
}

// Raised when the tenant's ledger is not empty: the template only makes new tenants.
const LEDGER_NOT_EMPTY_SQLSTATE = 'CPTL0';

/** The scratch schema a catalog's template is built in: one name per catalog, taken under a lock. */
export function scratchSchemaOf(catalogChecksum: string): string {
  return `cp_template_${catalogChecksum.slice(0, 16)}`;
}

export interface BuildSchemaTemplateInput {
  readonly pool: pg.Pool;
  /** The tenants database's connection string (pg_dump connects with it). */
  readonly connectionString: string;
  /** The database `pool` connects to (the scratch schema's lock key names it). */
  readonly databaseName: string;
  readonly catalog: MigrationCatalog;
  readonly catalogChecksum: string;
  readonly expected: SchemaFingerprint;
  readonly pgClientBinDir: string | null;
  readonly lockTimeoutMs: number;
  /** The deployment's ledger table (LEDGER_TABLE): left out of the template. */
  readonly ledgerTable: string;
}

/**
 * Builds the catalog's schema template on `pool`'s database: under a session lock per catalog
 * (two builders take turns; a crashed builder's scratch schema is dropped by the next), replays the
 * catalog into the scratch schema, verifies its fingerprint, dumps it and drops it.
 */
export async function buildSchemaTemplate(input: BuildSchemaTemplateInput): Promise<StoredSchemaTemplate> {
  const { pool, catalog, expected } = input;
  const scratch = scratchSchemaOf(input.catalogChecksum);
  const target: MigrationTarget = {
    schema: scratch,
    lockKey: schemaLockKey(input.databaseName, scratch),
    ledgerTable: input.ledgerTable,
  };
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(input.lockTimeoutMs))}`);
    await client.query('SELECT pg_advisory_lock($1::bigint)', [
      advisoryLockKey(`provision-template/${scratch}`),
    ]);
    try {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteSchema(scratch)} CASCADE`);
      await migrateUp(pool, target, catalog, {
        toVersion: catalog.latest,
        prepareDatabase: true,
        lockTimeoutMs: input.lockTimeoutMs,
      });
      const built = await readSchemaFingerprint(client, scratch, input.ledgerTable);
      if (built.hash !== expected.hash) throw new TemplateMismatchError(scratch, expected.hash, built.hash);
      const dump = await dumpSchema(
        client,
        input.connectionString,
        scratch,
        input.pgClientBinDir,
        input.ledgerTable,
      );
      return { ...schemaTemplateFromDump(dump, scratch), fingerprintHash: built.hash };
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteSchema(scratch)} CASCADE`);
    }
  } catch (error) {
    broken = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    // Closed, not returned: the session lock and settings go with it.
    client.release(broken ?? true);
  }
}

export interface ApplySchemaTemplateInput {
  readonly pool: pg.Pool;
  /** The tenant's target; its guard creates and marks the schema (or checks it is ours). */
  readonly target: MigrationTarget;
  readonly catalog: MigrationCatalog;
  readonly template: StoredSchemaTemplate;
  readonly expected: SchemaFingerprint;
  readonly lockTimeoutMs: number;
}

/**
 * Makes a new tenant schema from the template in one transaction of two round trips: under the
 * tenant's lock and ownership guard, the template's objects and data, the ledger with every catalog
 * file (execution_ms 0: nothing was executed file by file) and the schema's fingerprint; COMMIT
 * when the fingerprint is the expected one, ROLLBACK and TemplateMismatchError otherwise. A tenant
 * whose ledger is not empty (a retry after a replay began) is refused with nothing changed.
 */
export async function applySchemaTemplate(input: ApplySchemaTemplateInput): Promise<MigrateResult> {
  const { target, catalog, expected } = input;
  const schema = target.schema;
  const templateSql = renderSchemaTemplate(input.template, schema);
  const ledger = `${quoteSchema(schema)}.${ledgerTableOf(target)}`;
  const body = [
    // pg_dump orders objects by dependency, but SQL function bodies are not dependencies.
    'SET LOCAL check_function_bodies = false',
    prepareDatabaseSql({ lock: mentionsExtension(templateSql), revokePublicCreate: true }),
    ensureAndReadLedgerSql(target),
    `DO $cp$ BEGIN
       IF EXISTS (SELECT 1 FROM ${ledger}) THEN
         RAISE EXCEPTION 'the ledger of % is not empty', ${pg.escapeLiteral(schema)} USING ERRCODE = '${LEDGER_NOT_EMPTY_SQLSTATE}';
       END IF;
     END $cp$`,
    templateSql,
    insertLedgerEntriesSql(
      target,
      catalog.files.map((file) => ({ file, executionMs: 0 })),
    ),
    describeSchemaSql(schema, ledgerTableOf(target)),
  ].join(';\n');
  await withTargetTransaction(
    input.pool,
    target,
    input.lockTimeoutMs,
    async (_client, tx) => {
      const made = fingerprintFromResults(schema, tx.opening);
      if (made.hash !== expected.hash) throw new TemplateMismatchError(schema, expected.hash, made.hash);
    },
    { opening: body },
  );
  return {
    fromVersion: null,
    toVersion: catalog.latest,
    steps: catalog.files.map((file) => ({ version: file.version, name: file.name, executionMs: 0 })),
  };
}

/** Whether an error says the tenant's ledger was not empty (so the template did not apply). */
export function isLedgerNotEmpty(error: unknown): boolean {
  return (error as { code?: unknown }).code === LEDGER_NOT_EMPTY_SQLSTATE;
}

async function dumpSchema(
  client: pg.PoolClient,
  connectionString: string,
  schema: string,
  binDir: string | null,
  ledgerTable: string,
): Promise<string> {
  const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  const tools = await resolvePgTools(Number(rows[0]?.v), { binDir });
  const dir = await mkdtemp(path.join(tmpdir(), 'cp-template-'));
  try {
    const file = path.join(dir, 'template.sql');
    const connection = toolConnectionOf(connectionString);
    await runPgTool(
      tools.pgDump,
      [
        `--schema=${schema}`,
        `--exclude-table=${schema}.${ledgerTable}`,
        '--no-owner',
        '--no-privileges',
        // Data as INSERTs: the template is sent as one simple-protocol batch, which cannot COPY.
        '--inserts',
        `--file=${file}`,
        `--dbname=${connection.url}`,
      ],
      connection,
    );
    return await readFile(file, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
