/**
 * The ledger table inside each migrated schema (`control_plane_ledger` unless the deployment's
 * LEDGER_TABLE says otherwise): which catalog files ran, with their checksums. All names are
 * validated and quoted; all values go as parameters.
 */
import pg from 'pg';
import { LEDGER_TABLE_PATTERN } from '../config.js';
import { quoteSchema } from '../db/pg.js';
import { sortLedger } from './planner.js';
import type { LedgerEntry, MigrationFile, MigrationTarget, Queryable } from './types.js';

/**
 * The ledger table's default name inside each migrated schema (and always the control plane's):
 * a name no catalog uses. It used to be `schema_migrations`, golang-migrate's own table, which
 * public catalogs alter and drop. A deployment whose catalog has a table of this name sets
 * LEDGER_TABLE, which reaches the engine as `MigrationTarget.ledgerTable`.
 */
export const LEDGER_TABLE = 'control_plane_ledger';

/** Where a ledger is: a schema and, unless the default, the ledger table's name in it. */
export type LedgerLocation = Pick<MigrationTarget, 'schema' | 'ledgerTable'>;

/** The ledger table's name at `location`, checked to be a plain identifier (it is spliced into SQL). */
export function ledgerTableOf(location: LedgerLocation): string {
  const table = location.ledgerTable ?? LEDGER_TABLE;
  if (!LEDGER_TABLE_PATTERN.test(table)) throw new RangeError(`invalid ledger table name: ${table}`);
  return table;
}

/** The ledger's qualified, quoted name: `"schema".table`. */
function ledgerName(location: LedgerLocation): string {
  return `${quoteSchema(location.schema)}.${ledgerTableOf(location)}`;
}

/** The ledger's former name; a ledger of ours still called so is renamed the first time the engine locks the schema. */
export const LEGACY_LEDGER_TABLE = 'schema_migrations';

/** Raised (SQLSTATE) when the schema has golang-migrate's own `schema_migrations(version, dirty)` and no ledger of ours. */
export const FOREIGN_LEDGER_SQLSTATE = 'CPGM0';

// Our ledger's columns, sorted: how a `schema_migrations` table is recognised as ours.
const LEDGER_COLUMNS = "ARRAY['applied_at','checksum','execution_ms','name','version']";
const GOLANG_MIGRATE_COLUMNS = "ARRAY['dirty','version']";

interface LedgerRow {
  version: string;
  name: string;
  checksum: string;
  applied_at: Date;
  execution_ms: number | null;
}

/** Creates the target schema and its ledger table when missing (under the target's advisory lock). */
export async function ensureLedger(client: Queryable, ledger: LedgerLocation): Promise<void> {
  await client.query(ensureLedgerSql(ledger));
}

/**
 * Ensures the ledger exists and reads it in one round trip: on a fleet of thousands of tenants
 * the number of round trips per tenant is what the orchestration costs.
 */
export async function ensureAndReadLedger(client: Queryable, ledger: LedgerLocation): Promise<LedgerEntry[]> {
  const results = (await client.query(ensureAndReadLedgerSql(ledger))) as unknown as { rows: LedgerRow[] }[];
  return ledgerFromResults(results);
}

/** The SQL of `ensureAndReadLedger`, to send along with other statements in one round trip. */
export function ensureAndReadLedgerSql(ledger: LedgerLocation): string {
  return `${ensureLedgerSql(ledger)}; SELECT version, name, checksum, applied_at, execution_ms FROM ${ledgerName(ledger)}`;
}

/** The ledger from the results of a batch that ends with `ensureAndReadLedgerSql`. */
export function ledgerFromResults(results: readonly { rows: unknown[] }[]): LedgerEntry[] {
  return toLedger((results.at(-1)?.rows ?? []) as LedgerRow[]);
}

/**
 * An INSERT of ledger rows with the values as escaped literals, so it can travel in the same
 * simple-protocol round trip as the COMMIT. The values are the catalog's own (digits, file name,
 * hex checksum, integer) and are escaped regardless. An execution time is milliseconds, or an SQL
 * expression computing them on the server (trusted: built by the engine, never from input).
 */
export function insertLedgerEntriesSql(
  ledger: LedgerLocation,
  entries: readonly {
    readonly file: Pick<MigrationFile, 'version' | 'name' | 'checksum'>;
    readonly executionMs: number | { readonly sql: string };
  }[],
): string {
  const rows = entries.map(({ file, executionMs }) => {
    const ms = typeof executionMs === 'number' ? String(Math.max(0, Math.round(executionMs))) : executionMs.sql;
    return `(${escapeLiteral(file.version)}, ${escapeLiteral(file.name)}, ${escapeLiteral(file.checksum)}, ${ms})`;
  });
  return `INSERT INTO ${ledgerName(ledger)} (version, name, checksum, execution_ms) VALUES ${rows.join(', ')}`;
}

const { escapeLiteral } = pg;

/**
 * Under the schema's lock: renames a ledger of ours still called `schema_migrations` to the
 * configured name (only that legacy name: a ledger under another former LEDGER_TABLE is not
 * looked for), and refuses
 * (FOREIGN_LEDGER_SQLSTATE, one line) a schema golang-migrate manages. Costs no round trip: it
 * travels with the statements that ensure the ledger.
 */
export function adoptLegacyLedgerSql(ledger: LedgerLocation): string {
  const quoted = quoteSchema(ledger.schema);
  const table = ledgerTableOf(ledger);
  const legacy = escapeLiteral(`${quoted}.${LEGACY_LEDGER_TABLE}`);
  return `DO $cp$ DECLARE cols text[]; BEGIN
    IF to_regclass(${escapeLiteral(`${quoted}.${table}`)}) IS NULL AND to_regclass(${legacy}) IS NOT NULL THEN
      SELECT array_agg(attname::text ORDER BY attname::text) INTO cols FROM pg_attribute
       WHERE attrelid = to_regclass(${legacy}) AND attnum > 0 AND NOT attisdropped;
      IF cols = ${LEDGER_COLUMNS} THEN
        ALTER TABLE ${quoted}.${LEGACY_LEDGER_TABLE} RENAME TO ${table};
      ELSIF cols = ${GOLANG_MIGRATE_COLUMNS} THEN
        RAISE EXCEPTION 'schema % is managed by golang-migrate (its schema_migrations table has version and dirty); adopt it before the control plane migrates it', ${escapeLiteral(ledger.schema)}
          USING ERRCODE = '${FOREIGN_LEDGER_SQLSTATE}';
      END IF;
    END IF;
  END $cp$`;
}

// The name is bounded (a catalog file's title is shorter than a file name, at most 255 bytes) so
// that no row can outgrow a page: PostgreSQL then makes no TOAST table and TOAST index, which cost a
// new tenant's provisioning about a third of the ledger's CREATE TABLE. Ledgers made before keep `text`.
function ensureLedgerSql(ledger: LedgerLocation): string {
  return `CREATE SCHEMA IF NOT EXISTS ${quoteSchema(ledger.schema)};
    ${adoptLegacyLedgerSql(ledger)};
    CREATE TABLE IF NOT EXISTS ${ledgerName(ledger)} (
       version      varchar(64) PRIMARY KEY,
       name         varchar(255) NOT NULL,
       checksum     char(64) NOT NULL,
       applied_at   timestamptz NOT NULL DEFAULT now(),
       execution_ms integer NOT NULL DEFAULT 0
     )`;
}

/** Whether the schema already has a ledger table (under its current or its former name). */
export async function hasLedger(queryable: Queryable, ledger: LedgerLocation): Promise<boolean> {
  return (await existingLedgerTableOf(queryable, ledger)) !== null;
}

/**
 * The ledger's table name in `schema`: ours, or a ledger of ours not yet renamed (read without
 * the lock, e.g. for status, it stays where it is); null when there is none.
 */
async function existingLedgerTableOf(queryable: Queryable, ledger: LedgerLocation): Promise<string | null> {
  const quoted = quoteSchema(ledger.schema);
  const table = ledgerTableOf(ledger);
  const result = await queryable.query<{ ours: boolean; legacy: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS ours,
            (SELECT array_agg(attname::text ORDER BY attname::text) FROM pg_attribute
              WHERE attrelid = to_regclass($2) AND attnum > 0 AND NOT attisdropped) = ${LEDGER_COLUMNS} AS legacy`,
    [`${quoted}.${table}`, `${quoted}.${LEGACY_LEDGER_TABLE}`],
  );
  const row = result.rows[0];
  return row?.ours ? table : row?.legacy ? LEGACY_LEDGER_TABLE : null;
}

/** The ledger ordered by numeric version; empty when the schema or table does not exist. */
export async function readLedger(queryable: Queryable, ledger: LedgerLocation): Promise<LedgerEntry[]> {
  const table = await existingLedgerTableOf(queryable, ledger);
  if (table === null) return [];
  const result = await queryable.query<LedgerRow>(
    `SELECT version, name, checksum, applied_at, execution_ms FROM ${quoteSchema(ledger.schema)}.${table}`,
  );
  return toLedger(result.rows);
}

function toLedger(rows: readonly LedgerRow[]): LedgerEntry[] {
  return sortLedger(
    rows.map((row) => ({
      version: row.version,
      name: row.name,
      checksum: row.checksum.trim(),
      appliedAt: row.applied_at,
      executionMs: row.execution_ms ?? 0,
    })),
  );
}

/** Records a file as applied. */
export async function insertLedgerEntry(
  queryable: Queryable,
  ledger: LedgerLocation,
  file: Pick<MigrationFile, 'version' | 'name' | 'checksum'>,
  executionMs: number,
): Promise<void> {
  await queryable.query(
    `INSERT INTO ${ledgerName(ledger)} (version, name, checksum, execution_ms) VALUES ($1, $2, $3, $4)`,
    [file.version, file.name, file.checksum, Math.round(executionMs)],
  );
}

/** Replaces the recorded checksum of an applied version (stamping accepts the file on disk). */
export async function updateLedgerChecksum(
  queryable: Queryable,
  ledger: LedgerLocation,
  version: string,
  checksum: string,
): Promise<void> {
  await queryable.query(`UPDATE ${ledgerName(ledger)} SET checksum = $2 WHERE version = $1`, [
    version,
    checksum,
  ]);
}

/** Records several files as applied in one statement. */
export async function insertLedgerEntries(
  queryable: Queryable,
  ledger: LedgerLocation,
  entries: readonly { readonly file: Pick<MigrationFile, 'version' | 'name' | 'checksum'>; readonly executionMs: number }[],
): Promise<void> {
  if (entries.length === 0) return;
  const values = entries.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4})`);
  await queryable.query(
    `INSERT INTO ${ledgerName(ledger)} (version, name, checksum, execution_ms) VALUES ${values.join(', ')}`,
    entries.flatMap(({ file, executionMs }) => [file.version, file.name, file.checksum, Math.round(executionMs)]),
  );
}

/** Removes several applied versions from the ledger in one statement. */
export async function deleteLedgerEntries(queryable: Queryable, ledger: LedgerLocation, versions: readonly string[]): Promise<void> {
  if (versions.length === 0) return;
  await queryable.query(`DELETE FROM ${ledgerName(ledger)} WHERE version = ANY($1::text[])`, [
    versions,
  ]);
}

/** Removes an applied version from the ledger. */
export async function deleteLedgerEntry(queryable: Queryable, ledger: LedgerLocation, version: string): Promise<void> {
  await queryable.query(`DELETE FROM ${ledgerName(ledger)} WHERE version = $1`, [version]);
}
