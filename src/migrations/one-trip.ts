/**
 * The common case of `migrateUp` in one round trip: the caller knows (from the control plane's
 * cached version) where the target should be, so the whole transaction is sent as one string:
 * BEGIN, the tenant's advisory lock, search_path, ensure the ledger, a guard that the ledger
 * holds exactly the catalog's files up to the expected version (same versions, same checksums),
 * every pending file followed by a transaction-local clock mark, the ledger rows with their
 * execution times computed from the marks, COMMIT. A new tenant costs one round trip instead of
 * three, a fleet target likewise.
 *
 * It is one transaction: it commits whole or not at all. It returns null, having rolled back,
 * whenever it does not apply (no pending file, a no-transaction file, PER_MIGRATION, an expected
 * version the catalog lacks) or anything in it failed, the guard included (the target moved,
 * drifted, or was never where the cache said). The caller then takes the engine's careful path,
 * which plans from the ledger, reports drift, and names a failing file, line and SQLSTATE.
 */
import pg from 'pg';
import { quoteSchema } from '../db/pg.js';
import { advisoryLockKey } from './advisory-lock.js';
import { ensureAndReadLedgerSql, LEDGER_TABLE } from './ledger.js';
import { DEFAULT_LOCK_TIMEOUT_MS } from './target-session.js';
import { TransactionMode } from './types.js';
import type { AppliedStep, MigrateOptions, MigrateResult, MigrationCatalog, MigrationTarget } from './types.js';

// Raised by the guard when the ledger is not what the caller expected.
const UNEXPECTED_LEDGER_SQLSTATE = 'CPUL0';

export interface OneTripOptions extends Omit<MigrateOptions, 'onApplied'> {
  /** The version the target is believed to be at; null for an empty ledger (a new tenant). */
  readonly expectedVersion: string | null;
}

export async function migrateUpInOneTrip(
  pool: pg.Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
  options: OneTripOptions,
): Promise<MigrateResult | null> {
  const mode = options.mode ?? TransactionMode.PER_TENANT;
  const toVersion = options.toVersion ?? catalog.latest;
  if (mode !== TransactionMode.PER_TENANT || toVersion === null) return null;
  const files = catalog.files;
  const done = options.expectedVersion === null ? 0 : indexAfter(catalog, options.expectedVersion);
  const last = indexAfter(catalog, toVersion);
  if (done === null || last === null || last <= done) return null;
  const pending = files.slice(done, last);
  if (pending.some((file) => !file.transactional)) return null;
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (!Number.isSafeInteger(lockTimeoutMs) || lockTimeoutMs < 0) {
    throw new RangeError(`lockTimeoutMs must be a non-negative integer, got ${lockTimeoutMs}`);
  }

  const schema = quoteSchema(target.schema);
  const ledger = `${schema}.${LEDGER_TABLE}`;
  const expected = files
    .slice(0, done)
    .map((file) => `${file.version}:${file.checksum}`)
    .join(',');
  // Transaction-local settings hold each file's end time; the ledger rows are computed from them.
  const mark = (i: number) => `SELECT set_config('cp.one_trip_mark_${i}', clock_timestamp()::text, true)`;
  const marked = (i: number) => `current_setting('cp.one_trip_mark_${i}')::timestamptz`;
  const rows = pending.map((file, i) => {
    const ms = `greatest(0, round(extract(epoch FROM ${marked(i + 1)} - ${marked(i)}) * 1000))::int`;
    return `(${pg.escapeLiteral(file.version)}, ${pg.escapeLiteral(file.name)}, ${pg.escapeLiteral(file.checksum)}, ${ms})`;
  });
  const sql = [
    'BEGIN',
    `SET LOCAL lock_timeout = ${lockTimeoutMs}`,
    `SELECT pg_advisory_xact_lock(${advisoryLockKey(target.lockKey)}::bigint)`,
    `SET LOCAL search_path TO ${schema}, public`,
    ensureAndReadLedgerSql(target.schema),
    `DO $cp$ BEGIN
       IF (SELECT coalesce(string_agg(version || ':' || checksum, ',' ORDER BY version::numeric), '') FROM ${ledger})
          <> ${pg.escapeLiteral(expected)} THEN
         RAISE EXCEPTION 'the ledger is not as expected' USING ERRCODE = '${UNEXPECTED_LEDGER_SQLSTATE}';
       END IF;
     END $cp$`,
    mark(0),
    // "\n;" ends a file whose last line is a comment or lacks its semicolon.
    ...pending.map((file, i) => `${file.upSql}\n;${mark(i + 1)}`),
    `INSERT INTO ${ledger} (version, name, checksum, execution_ms) VALUES ${rows.join(', ')}
       RETURNING version, execution_ms`,
    'COMMIT',
  ].join(';\n');

  const results = await runOrRollBack(pool, sql);
  if (!results) return null;
  const inserted = (results.at(-2)?.rows ?? []) as { version: string; execution_ms: number }[];
  const executionMs = new Map(inserted.map((row) => [row.version, row.execution_ms]));
  const steps: AppliedStep[] = pending.map((file) => ({
    version: file.version,
    name: file.name,
    executionMs: executionMs.get(file.version) ?? 0,
  }));
  return { fromVersion: options.expectedVersion, toVersion: pending.at(-1)!.version, steps };
}

/** How many catalog files there are up to and including `version`; null when it is not in the catalog. */
function indexAfter(catalog: MigrationCatalog, version: string): number | null {
  const file = catalog.find(version);
  return file ? catalog.files.indexOf(file) + 1 : null;
}

/**
 * Sends `sql` (a whole transaction) on one connection; on failure rolls back and resolves null.
 * The failure is not lost: the caller's fallback, the engine, meets the same condition and
 * reports it (by file). A connection that cannot roll back is closed, not reused.
 */
async function runOrRollBack(pool: pg.Pool, sql: string): Promise<pg.QueryResult[] | null> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return [(await client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[]].flat();
  } catch {
    await client.query('ROLLBACK').catch((error: Error) => {
      broken = error;
    });
    return null;
  } finally {
    client.release(broken);
  }
}
