/**
 * Database templates (DATABASE isolation): one database per catalog and deployment on each tenant
 * server, the catalog replayed into it by the engine as a provisioning would, verified against the
 * expected fingerprint, then closed to connections and flagged a template, so `CREATE DATABASE …
 * TEMPLATE` copies it (PostgreSQL refuses to copy a database anybody is connected to; with
 * ALLOW_CONNECTIONS false nobody can be). Its comment says whose it is and that it is complete: a
 * template without that comment is a crashed build, dropped and built again.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { withDatabase } from '../config.js';
import { quoteDatabase, quoteSchema, withConnection } from '../db/pg.js';
import {
  describeSchemaSql,
  fingerprintFromResults,
  readSchemaFingerprint,
} from '../fingerprints/read-schema.js';
import type { SchemaFingerprint } from '../fingerprints/schema-description.js';
import {
  LEDGER_TABLE,
  ledgerTableOf,
  advisoryLockKey,
  migrateUp,
  schemaLockKey,
  withTargetTransaction,
} from '../migrations/index.js';
import type { MigrateResult, MigrationCatalog, MigrationTarget } from '../migrations/index.js';
import { DATABASE_ISOLATION_SCHEMA } from '../migrations/ledger-target.js';
import { TemplateMismatchError } from './schema-template.js';

/** Start of a finished template database's comment; the deployment id and fingerprint follow. */
export const TEMPLATE_MARKER_PREFIX = 'tenant-control-plane template ';

/**
 * The template database of a catalog for one deployment and ledger table:
 * `cp_template_<deployment 8>_<key 16>`. The copy carries the ledger under the table name it was
 * built with, so a deployment whose LEDGER_TABLE changed needs its own template: under the
 * default table the key is the catalog checksum, otherwise the SHA-256 of both.
 */
export function templateDatabaseOf(
  deploymentId: string,
  catalogChecksum: string,
  ledgerTable: string = LEDGER_TABLE,
): string {
  const key =
    ledgerTable === LEDGER_TABLE
      ? catalogChecksum
      : createHash('sha256').update(`${catalogChecksum}/${ledgerTable}`).digest('hex');
  return `${templateDatabasePrefixOf(deploymentId)}${key.slice(0, 16)}`;
}

/** The start of every template database's name of one deployment (`cp_template_<deployment 8>_`). */
export function templateDatabasePrefixOf(deploymentId: string): string {
  return `cp_template_${deploymentId.replace(/-/g, '').slice(0, 8)}_`;
}

/** The comment of a finished template database. */
export function templateMarker(deploymentId: string, fingerprintHash: string): string {
  return `${TEMPLATE_MARKER_PREFIX}${deploymentId} ${fingerprintHash}`;
}

export interface EnsureDatabaseTemplateInput {
  /** Any connection string to the tenant server (its database part is replaced). */
  readonly connectionString: string;
  readonly deploymentId: string;
  readonly catalog: MigrationCatalog;
  readonly catalogChecksum: string;
  /** The expected fingerprint of the catalog's latest version, computed on the server of `pool`. */
  readonly expectedOn: (pool: pg.Pool) => Promise<SchemaFingerprint>;
  readonly lockTimeoutMs: number;
  /** The deployment's ledger table (LEDGER_TABLE): the template's ledger, copied with it. */
  readonly ledgerTable: string;
}

/**
 * The name of the catalog's finished template database on the server, built first when missing
 * (under a session lock on the maintenance database, so two builders take turns). Throws
 * TemplateMismatchError, dropping what it built, when the replayed structure is not the expected one.
 */
export async function ensureDatabaseTemplate(input: EnsureDatabaseTemplateInput): Promise<string> {
  const name = templateDatabaseOf(input.deploymentId, input.catalogChecksum, input.ledgerTable);
  const quoted = quoteDatabase(name);
  const ours = `${TEMPLATE_MARKER_PREFIX}${input.deploymentId} `;
  return withConnection(withDatabase(input.connectionString, 'postgres'), async (client) => {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(input.lockTimeoutMs))}`);
    await client.query('SELECT pg_advisory_lock($1::bigint)', [
      advisoryLockKey(`provision-template/${name}`),
    ]);
    const found = await client.query<{ marker: string | null; istemplate: boolean }>(
      `SELECT shobj_description(oid, 'pg_database') AS marker, datistemplate AS istemplate FROM pg_database WHERE datname = $1`,
      [name],
    );
    const existing = found.rows[0];
    if (existing?.istemplate && existing.marker?.startsWith(ours)) return name;
    if (existing) {
      // A build that crashed before its marker: ours (the name carries our id), dropped and rebuilt.
      if (existing.marker !== null) {
        throw new Error(`database ${name} exists and is not this deployment's template`);
      }
      await client.query(`ALTER DATABASE ${quoted} WITH IS_TEMPLATE false`);
      await client.query(`DROP DATABASE ${quoted} WITH (FORCE)`);
    }
    await client.query(`CREATE DATABASE ${quoted}`);
    try {
      const url = withDatabase(input.connectionString, name);
      const { built, expected } = await withPool(url, async (pool) => {
        const wanted = await input.expectedOn(pool);
        await migrateUp(
          pool,
          {
            schema: DATABASE_ISOLATION_SCHEMA,
            lockKey: schemaLockKey(name, DATABASE_ISOLATION_SCHEMA),
            ledgerTable: input.ledgerTable,
          },
          input.catalog,
          { toVersion: input.catalog.latest, prepareDatabase: true, lockTimeoutMs: input.lockTimeoutMs },
        );
        return {
          built: await readSchemaFingerprint(pool, DATABASE_ISOLATION_SCHEMA, input.ledgerTable),
          expected: wanted,
        };
      });
      if (built.hash !== expected.hash) throw new TemplateMismatchError(name, expected.hash, built.hash);
      // Closed first: no session can be in it when a tenant's CREATE DATABASE copies it.
      await client.query(`ALTER DATABASE ${quoted} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
      const marker = templateMarker(input.deploymentId, built.hash);
      await client.query(`COMMENT ON DATABASE ${quoted} IS ${pg.escapeLiteral(marker)}`);
      return name;
    } catch (error) {
      await client.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`);
      throw error;
    }
  });
}

async function withPool<T>(url: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 2,
    application_name: 'tenant-control-plane-template',
  });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/**
 * Checks a tenant database just copied from the template, in one transaction under the tenant's
 * lock: its ledger's applied_at becomes now and execution_ms 0 (the copy is when the files reached
 * this tenant, none of them executed here, as with a schema template) and its fingerprint is read; COMMIT when it is the expected one, ROLLBACK and TemplateMismatchError
 * otherwise (the caller drops the copy and replays).
 */
export async function verifyDatabaseCopy(
  pool: pg.Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
  expected: SchemaFingerprint,
  lockTimeoutMs: number,
): Promise<MigrateResult> {
  const ledger = `${quoteSchema(target.schema)}.${ledgerTableOf(target)}`;
  await withTargetTransaction(
    pool,
    target,
    lockTimeoutMs,
    async (_client, tx) => {
      const copied = fingerprintFromResults(target.schema, tx.opening);
      if (copied.hash !== expected.hash)
        throw new TemplateMismatchError(target.schema, expected.hash, copied.hash);
    },
    {
      opening: `UPDATE ${ledger} SET applied_at = now(), execution_ms = 0; ${describeSchemaSql(target.schema, ledgerTableOf(target))}`,
    },
  );
  return {
    fromVersion: null,
    toVersion: catalog.latest,
    steps: catalog.files.map((file) => ({ version: file.version, name: file.name, executionMs: 0 })),
  };
}
