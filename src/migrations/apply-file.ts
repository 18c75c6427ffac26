/**
 * Runs one catalog file (up or down) on a connection and records it in the ledger, turning
 * any pg failure into a MigrationFailedError that names the schema, file, line and SQLSTATE.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { PoolClient } from 'pg';
import { quoteSchema } from '../db/pg.js';
import { fileNameOf } from './catalog.js';
import { MigrationFailedError, TransactionClosedError } from './errors.js';
import { mentionsExtension, prepareDatabaseSql, relocateExtensionsSql } from './extensions.js';
import { isStepTransactional } from './planner.js';
import {
  deleteLedgerEntries,
  deleteLedgerEntry,
  insertLedgerEntries,
  insertLedgerEntriesSql,
  insertLedgerEntry,
  type LedgerLocation,
} from './ledger.js';
import { splitSqlStatements } from './sql-statements.js';
import { TARGET_TX_SETTING } from './target-session.js';
import type { AppliedStep, MigrationFile } from './types.js';

/** Runs `file` in `direction` on `client`, then inserts (up) or deletes (down) its ledger row. */
export async function applyFile(
  client: PoolClient,
  ledger: LedgerLocation,
  file: MigrationFile,
  direction: 'up' | 'down',
): Promise<AppliedStep> {
  const step = await runFile(client, ledger.schema, file, direction);
  if (direction === 'up') await insertLedgerEntry(client, ledger, file, step.executionMs);
  else await deleteLedgerEntry(client, ledger, file.version);
  return step;
}

/**
 * Runs a group of transactional files in one transaction, then writes all their ledger rows in
 * one statement: the rows commit (or roll back) with the files either way, and a tenant pays
 * one round trip per file plus one, not two per file.
 */
export async function applyGroup(
  client: PoolClient,
  ledger: LedgerLocation,
  files: readonly MigrationFile[],
  direction: 'up' | 'down',
): Promise<AppliedStep[]> {
  const { schema } = ledger;
  const steps: AppliedStep[] = [];
  for (const file of files) {
    steps.push(await runFile(client, schema, file, direction));
    // pg reports the transaction status with every ReadyForQuery: checking it costs no round trip.
    if (client.getTransactionStatus() !== 'T') throw new TransactionClosedError(schema, fileNameOf(file, direction));
  }
  if (direction === 'up') {
    await insertLedgerEntries(
      client,
      ledger,
      files.map((file, i) => ({ file, executionMs: steps[i]?.executionMs ?? 0 })),
    );
  } else {
    await deleteLedgerEntries(
      client,
      ledger,
      files.map((file) => file.version),
    );
  }
  return steps;
}

// Marker columns between the files of a batch; their server timestamps time each file, and the
// transaction-local setting set when the target's transaction opened tells that it is still open.
const MARKER = '__cp_file_done';
const TX_OPEN = '__cp_tx_open';
const MARKER_SQL = `SELECT clock_timestamp() AS ${MARKER}, current_setting('${TARGET_TX_SETTING}', true) AS ${TX_OPEN}`;

/** An up file's SQL followed by its verify script, which runs in the same transaction. */
export function withVerify(file: MigrationFile): string {
  return file.verifySql === null ? file.upSql : `${file.upSql}\n;${file.verifySql}`;
}

/**
 * Runs a group of transactional up files in ONE round trip, timing each file with a
 * `clock_timestamp()` marker after it, and returns the steps plus the ledger INSERT to send with
 * the COMMIT. A failure throws BatchFailedError: the batch cannot say which file failed, so the
 * caller rolls back and replays the group file by file to report it exactly.
 */
export async function applyGroupBatched(
  client: PoolClient,
  ledger: LedgerLocation,
  files: readonly MigrationFile[],
): Promise<{ steps: AppliedStep[]; ledgerSql: string }> {
  const { schema } = ledger;
  // "\n;" ends a file whose last line is a comment or lacks its semicolon.
  const extensions = files.some((file) => mentionsExtension(file.upSql));
  const batch = [
    ...(extensions ? [prepareDatabaseSql({ lock: true, revokePublicCreate: false })] : []),
    MARKER_SQL,
    ...files.map((file) => `${withVerify(file)}\n;${MARKER_SQL}`),
    ...(extensions ? [relocateExtensionsSql(schema)] : []),
  ].join(';\n');
  let results: { fields: { name: string }[]; rows: Record<string, unknown>[] }[];
  try {
    const raw = (await client.query(batch)) as unknown;
    results = Array.isArray(raw) ? raw : [raw as (typeof results)[number]];
  } catch (error) {
    throw new BatchFailedError(error);
  }
  const markers = results.filter((result) => result.fields?.length === 2 && result.fields[0]?.name === MARKER);
  const closed = markers.findIndex((result) => result.rows[0]?.[TX_OPEN] !== 'open');
  const closer = files[closed - 1];
  if (closed !== -1) throw new TransactionClosedError(schema, closer ? fileNameOf(closer) : fileNameOf(files[0]!));
  const marks = markers.map((result) => (result.rows[0]?.[MARKER] as Date).getTime());
  if (marks.length !== files.length + 1) {
    // A file that returned a column named like the marker would shift the timings: replay instead.
    throw new BatchFailedError(new Error(`expected ${files.length + 1} file markers, found ${marks.length}`));
  }
  const steps = files.map((file, i) => ({
    version: file.version,
    name: file.name,
    executionMs: Math.max(0, (marks[i + 1] as number) - (marks[i] as number)),
  }));
  const ledgerSql = insertLedgerEntriesSql(
    ledger,
    files.map((file, i) => ({ file, executionMs: steps[i]?.executionMs ?? 0 })),
  );
  return { steps, ledgerSql };
}

/** A batched group failed somewhere; the transaction is aborted and must be replayed file by file. */
export class BatchFailedError extends Error {
  constructor(cause: unknown) {
    super('A batched group of migrations failed; replaying it file by file', { cause });
    this.name = 'BatchFailedError';
  }
}

async function runFile(
  client: PoolClient,
  schema: string,
  file: MigrationFile,
  direction: 'up' | 'down',
): Promise<AppliedStep> {
  const sql = direction === 'up' ? file.upSql : file.downSql;
  if (sql === null) throw new Error(`${fileNameOf(file)} has no down file (planDown should have refused)`);
  const transactional = isStepTransactional({ direction }, file);
  const name = fileNameOf(file, direction);
  const started = performance.now();
  const extensions = mentionsExtension(sql);
  if (extensions) await client.query(prepareDatabaseSql({ lock: true, revokePublicCreate: false }));
  if (sql.trim() === '') {
    // An empty down file is a no-op step.
  } else if (transactional) {
    await runSql(client, schema, file, name, sql, sql, 0);
  } else {
    // One statement per query: a multi-statement query is an implicit transaction block.
    for (const statement of splitSqlStatements(sql)) {
      await runSql(client, schema, file, name, sql, statement.text, statement.offset);
    }
  }
  if (direction === 'up' && file.verifySql !== null) {
    const verifyName = fileNameOf(file, 'verify');
    // Statement by statement, so a failure names its line even when pg reports no position.
    for (const statement of splitSqlStatements(file.verifySql)) {
      await runSql(client, schema, file, verifyName, file.verifySql, statement.text, statement.offset, true);
    }
  }
  if (extensions) await runSql(client, schema, file, name, sql, relocateExtensionsSql(schema), 0);
  // A failed CONCURRENTLY build leaves an INVALID index that IF NOT EXISTS then skips on the retry:
  // the file must not be recorded while one exists.
  if (!transactional) await runSql(client, schema, file, name, sql, invalidIndexCheckSql(schema), 0);
  const executionMs = Math.round(performance.now() - started);
  return { version: file.version, name: file.name, executionMs };
}

async function runSql(
  client: PoolClient,
  schema: string,
  file: MigrationFile,
  name: string,
  fileSql: string,
  text: string,
  offset: number,
  statementKnown = false,
): Promise<void> {
  try {
    // No parameters: the simple query protocol, so multi-statement files work.
    await client.query(text);
  } catch (error) {
    throw new MigrationFailedError(schema, name, file.version, fileSql, error, offset, statementKnown);
  }
}

/**
 * Raises (SQLSTATE 55000) when the schema has an INVALID index, naming each and what to do.
 * Run after a no-transaction file, whose `CREATE INDEX CONCURRENTLY` leaves one when it fails.
 */
function invalidIndexCheckSql(schema: string): string {
  const literal = pg.escapeLiteral(quoteSchema(schema));
  return `DO $cp$ DECLARE names text; BEGIN
    SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY c.relname) INTO names
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relnamespace = to_regnamespace(${literal}) AND NOT i.indisvalid;
    IF names IS NOT NULL THEN
      RAISE EXCEPTION 'invalid index % left by a failed CREATE INDEX CONCURRENTLY; the file is not recorded as applied: run DROP INDEX CONCURRENTLY % (for each), fix the cause, then retry', names, names
        USING ERRCODE = '55000';
    END IF;
  END $cp$`;
}
