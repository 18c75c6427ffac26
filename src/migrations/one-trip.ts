/**
 * The common case of `migrateUp` in one round trip: the caller knows (from the control plane's
 * cached version) where the target should be, so the whole transaction is sent as one string
 * (runTargetTransaction): the tenant's advisory lock and search_path, ensure the ledger, a guard
 * that the ledger holds exactly the catalog's files up to the expected version (same versions,
 * same checksums), every pending file followed by a transaction-local clock mark, the ledger rows
 * with their execution times computed from the marks, COMMIT. A new tenant costs one round trip
 * instead of three, a fleet target likewise. A caller's read of the end state (the schema's
 * fingerprint) may ride after the COMMIT in the same round trip (`readAfterCommit`); its failure
 * never undoes or fails the move (see runTargetTransactionThenRead).
 *
 * It is one transaction: it commits whole or not at all. When it does not apply (no pending file,
 * a no-transaction file, PER_MIGRATION, an expected version the catalog lacks) it is not tried;
 * when it fails, the guard included (the target moved, drifted, or was never where the cache
 * said), it has rolled back. Either way the caller takes the engine's careful path, which plans
 * from the ledger, reports drift, and names a failing file, line and SQLSTATE.
 */
import pg from 'pg';
import { quoteSchema } from '../db/pg.js';
import { withVerify } from './apply-file.js';
import { mentionsExtension, prepareDatabaseSql, relocateExtensionsSql } from './extensions.js';
import { ensureAndReadLedgerSql, insertLedgerEntriesSql, ledgerTableOf, readLedger } from './ledger.js';
import { DEFAULT_LOCK_TIMEOUT_MS, runTargetTransaction, runTargetTransactionThenRead } from './target-session.js';
import { TransactionMode } from './types.js';
import type {
  AfterCommitRead,
  MigrateOptions,
  MigrateResult,
  MigrationCatalog,
  MigrationTarget,
  ReadAfterCommit,
} from './types.js';

// Raised by the guard when the ledger is not what the caller expected.
const UNEXPECTED_LEDGER_SQLSTATE = 'CPUL0';

export interface OneTripOptions<T> extends Omit<MigrateOptions, 'onApplied'> {
  /** The version the target is believed to be at; null for an empty ledger (a new tenant). */
  readonly expectedVersion: string | null;
  /** Statements sent after the COMMIT in the same round trip (e.g. the schema's fingerprint). */
  readonly readAfterCommit?: ReadAfterCommit<T>;
}

/**
 * What the attempt came to: the move, or why not. `failed` means a file (or the lock) failed in
 * the attempt, so the careful path need not try the same files in one batch again.
 */
export type OneTripOutcome<T = never> =
  | {
      readonly kind: 'moved';
      readonly result: MigrateResult;
      /** What `readAfterCommit` came to; absent when none was asked for. */
      readonly afterCommit?: AfterCommitRead<T>;
    }
  | { readonly kind: 'not-applicable' | 'unexpected-ledger' | 'failed' };

export async function migrateUpInOneTrip<T = never>(
  pool: pg.Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
  options: OneTripOptions<T>,
): Promise<OneTripOutcome<T>> {
  const mode = options.mode ?? TransactionMode.PER_TENANT;
  const toVersion = options.toVersion ?? catalog.latest;
  const files = catalog.files;
  const done = options.expectedVersion === null ? 0 : indexAfter(catalog, options.expectedVersion);
  const last = toVersion === null ? null : indexAfter(catalog, toVersion);
  const pending = done === null || last === null ? [] : files.slice(done, last);
  if (mode !== TransactionMode.PER_TENANT || pending.length === 0 || pending.some((file) => !file.transactional)) {
    return { kind: 'not-applicable' };
  }

  const ledger = `${quoteSchema(target.schema)}.${ledgerTableOf(target)}`;
  const expected = files
    .slice(0, done ?? 0)
    .map((file) => `${file.version}:${file.checksum}`)
    .join(',');
  // Transaction-local settings hold each file's end time; the ledger rows are computed from them.
  const mark = (i: number) => `SELECT set_config('cp.one_trip_mark_${i}', clock_timestamp()::text, true)`;
  const marked = (i: number) => `current_setting('cp.one_trip_mark_${i}')::timestamptz`;
  const insert = insertLedgerEntriesSql(
    target,
    pending.map((file, i) => ({
      file,
      executionMs: { sql: `greatest(0, round(extract(epoch FROM ${marked(i + 1)} - ${marked(i)}) * 1000))::int` },
    })),
  );
  const extensions = pending.some((file) => mentionsExtension(file.upSql));
  const body = [
    ...(extensions || options.prepareDatabase
      ? [prepareDatabaseSql({ lock: extensions, revokePublicCreate: options.prepareDatabase ?? false })]
      : []),
    ensureAndReadLedgerSql(target),
    `DO $cp$ BEGIN
       IF (SELECT coalesce(string_agg(version || ':' || checksum, ',' ORDER BY version::numeric), '') FROM ${ledger})
          <> ${pg.escapeLiteral(expected)} THEN
         RAISE EXCEPTION 'the ledger is not as expected' USING ERRCODE = '${UNEXPECTED_LEDGER_SQLSTATE}';
       END IF;
     END $cp$`,
    mark(0),
    // "\n;" ends a file whose last line is a comment or lacks its semicolon.
    ...pending.map((file, i) => `${withVerify(file)}\n;${mark(i + 1)}`),
    ...(extensions ? [relocateExtensionsSql(target.schema)] : []),
    `${insert} RETURNING version, execution_ms`,
  ].join(';\n');

  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  let results: pg.QueryResult[] | null;
  let afterCommit: AfterCommitRead<T> | undefined;
  try {
    if (options.readAfterCommit) {
      const committed = await runTargetTransactionThenRead(pool, target, lockTimeoutMs, body, options.readAfterCommit);
      results = committed.results;
      afterCommit = committed.afterCommit;
    } else {
      results = await runTargetTransaction(pool, target, lockTimeoutMs, body);
    }
  } catch (error) {
    // Rolled back; the careful path meets the same condition and reports it.
    const unexpected = (error as { code?: unknown }).code === UNEXPECTED_LEDGER_SQLSTATE;
    return { kind: unexpected ? 'unexpected-ledger' : 'failed' };
  }
  // Committed, but the read after it failed and took the ledger rows' results with it: the ledger has them.
  const inserted = results
    ? ((results.at(-1)?.rows ?? []) as { version: string; execution_ms: number }[])
    : await readExecutionTimes(pool, target);
  const executionMs = new Map(inserted.map((row) => [row.version, row.execution_ms]));
  const steps = pending.map((file) => ({
    version: file.version,
    name: file.name,
    executionMs: executionMs.get(file.version) ?? 0,
  }));
  const result = { fromVersion: options.expectedVersion, toVersion: pending.at(-1)!.version, steps };
  return { kind: 'moved', result, ...(afterCommit ? { afterCommit } : {}) };
}

/** The execution times the ledger holds; none when it cannot be read (the move stands all the same). */
async function readExecutionTimes(
  pool: pg.Pool,
  target: MigrationTarget,
): Promise<{ version: string; execution_ms: number }[]> {
  try {
    const ledger = await readLedger(pool, target);
    return ledger.map((entry) => ({ version: entry.version, execution_ms: entry.executionMs }));
  } catch {
    // Only the reported times are lost: the steps are known from the plan that committed.
    return [];
  }
}

/** How many catalog files there are up to and including `version`; null when it is not in the catalog. */
function indexAfter(catalog: MigrationCatalog, version: string): number | null {
  const file = catalog.find(version);
  return file ? catalog.files.indexOf(file) + 1 : null;
}
