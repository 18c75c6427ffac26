/**
 * Scoped connections to a migration target, holding its advisory lock: a transaction with
 * `pg_advisory_xact_lock` for transactional files, a dedicated session with `pg_advisory_lock`
 * for `-- migrate:no-transaction` files.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient, QueryResult } from 'pg';
import { quoteSchema } from '../db/pg.js';
import { advisoryLockKey } from './advisory-lock.js';
import { searchPathOf } from './extensions.js';
import type { AfterCommitRead, MigrationTarget, ReadAfterCommit } from './types.js';

/** `lock_timeout` when the caller does not say: long enough for a busy tenant, short enough to retry. */
export const DEFAULT_LOCK_TIMEOUT_MS = 5000;

/**
 * A transaction-local setting the opening sets: a file that ends the target's transaction
 * (COMMIT, ROLLBACK) resets it, so the engine can tell which file did.
 */
export const TARGET_TX_SETTING = 'cp.target_tx';

/** What `withTargetTransaction` hands its callback besides the connection. */
export interface TargetTransaction {
  /** The results of the `opening` statements, which ran in the round trip that took the lock. */
  readonly opening: readonly QueryResult[];
  /** Statements to send in the same round trip as the COMMIT (they run first; an error aborts it). */
  commitWith(sql: string): void;
}

export interface TargetTransactionOptions {
  /** Statements to run in the round trip that opens the transaction and takes the lock. */
  readonly opening?: string;
}

/**
 * Runs `fn` inside `BEGIN; SET LOCAL lock_timeout; pg_advisory_xact_lock; SET LOCAL search_path`
 * (the target's schema, then the extensions schema; never `public`)
 * and commits; any error rolls everything back and is rethrown unchanged.
 */
export async function withTargetTransaction<T>(
  pool: Pool,
  target: MigrationTarget,
  lockTimeoutMs: number,
  fn: (client: PoolClient, tx: TargetTransaction) => Promise<T>,
  options: TargetTransactionOptions = {},
): Promise<T> {
  const opening = openingSql(target, lockTimeoutMs);
  return withRollbackOnError(pool, async (client) => {
    // One round trip opens the locked transaction.
    const opened = (await client.query(
      opening + (options.opening ? `; ${options.opening}` : ''),
    )) as unknown as QueryResult[];
    let prelude = '';
    const result = await fn(client, {
      // BEGIN, SET, the lock and SET come first.
      opening: opened.slice(openingStatements(target)),
      commitWith: (sql) => {
        prelude += `${sql};\n`;
      },
    });
    await client.query(`${prelude}COMMIT`);
    return result;
  });
}

/**
 * A whole transaction in one round trip: opens it as withTargetTransaction does, runs `body`
 * (statements separated by `;`) and commits. Returns the results of `body`'s statements; any
 * error rolls everything back and is rethrown unchanged.
 */
export async function runTargetTransaction(
  pool: Pool,
  target: MigrationTarget,
  lockTimeoutMs: number,
  body: string,
): Promise<QueryResult[]> {
  const sql = `${openingSql(target, lockTimeoutMs)};\n${body};\nCOMMIT`;
  return withRollbackOnError(pool, async (client) => {
    const results = (await client.query(sql)) as unknown as QueryResult[];
    return results.slice(openingStatements(target), -1);
  });
}

/** What `runTargetTransactionThenRead` came to once the transaction committed. */
export interface CommittedThenRead<T> {
  /** The results of `body`'s statements; null when the read after COMMIT failed (they were lost with it). */
  readonly results: QueryResult[] | null;
  readonly afterCommit: AfterCommitRead<T>;
}

/**
 * As runTargetTransaction, then `after`'s statements in the same round trip, after the COMMIT.
 * Resolves once the transaction committed, whatever the read came to; rejects (rolled back) when
 * it did not. A failed batch leaves no doubt which: the transaction also sets a session-level
 * marker, which survives only if it committed, and the marker is read before the connection goes.
 */
export async function runTargetTransactionThenRead<T>(
  pool: Pool,
  target: MigrationTarget,
  lockTimeoutMs: number,
  body: string,
  after: ReadAfterCommit<T>,
): Promise<CommittedThenRead<T>> {
  const client = await pool.connect();
  const mark = randomUUID();
  let release: boolean | Error = false;
  try {
    const sql =
      `${openingSql(target, lockTimeoutMs)};\n${body};\n` +
      `SELECT set_config('${COMMIT_MARK}', '${mark}', false) AS mark;\nCOMMIT;\n${after.sql(client)}`;
    let results: QueryResult[];
    try {
      results = (await client.query(sql)) as unknown as QueryResult[];
    } catch (error) {
      // What the read after COMMIT may have left on the connection (a statement half-prepared)
      // is not known: it is destroyed, not returned to the pool.
      release = true;
      if (await hasCommitted(client, mark)) return { results: null, afterCommit: { ok: false, error } };
      throw error;
    }
    const marked = results.findIndex((result) => (result.rows[0] as { mark?: unknown } | undefined)?.mark === mark);
    // The marker row, then COMMIT's, then the read's results.
    const afterCommit = readSafely(after, client, results.slice(marked + 2));
    return { results: results.slice(openingStatements(target), marked), afterCommit };
  } finally {
    client.release(release);
  }
}

// The session-level setting a one-round-trip transaction sets to a fresh value before its COMMIT.
const COMMIT_MARK = 'cp.committed_mark';

/** Ends whatever is left open and tells whether the transaction that set `mark` committed. */
async function hasCommitted(client: PoolClient, mark: string): Promise<boolean> {
  try {
    const results = (await client.query(
      `ROLLBACK; SELECT current_setting('${COMMIT_MARK}', true) AS mark`,
    )) as unknown as QueryResult[];
    return (results[1]?.rows[0] as { mark?: unknown } | undefined)?.mark === mark;
  } catch {
    // The connection is gone: nothing says the transaction committed, so the move is retried
    // from the ledger, which does know.
    return false;
  }
}

function readSafely<T>(after: ReadAfterCommit<T>, client: PoolClient, results: QueryResult[]): AfterCommitRead<T> {
  try {
    return { ok: true, value: after.read(client, results) };
  } catch (error) {
    return { ok: false, error };
  }
}

// BEGIN, SET LOCAL lock_timeout, the lock, SET LOCAL search_path, SET LOCAL cp.target_tx (then
// the target's guard).
const OPENING_STATEMENTS = 5;

function openingStatements(target: MigrationTarget): number {
  return OPENING_STATEMENTS + (target.guardSql ? 1 : 0);
}

/** The statements that open a target's transaction; the key and timeout are validated literals. */
function openingSql(target: MigrationTarget, lockTimeoutMs: number): string {
  const key = lockKeyLiteral(advisoryLockKey(target.lockKey));
  return (
    `BEGIN; SET LOCAL lock_timeout = ${lockTimeout(lockTimeoutMs)}; ` +
    `SELECT pg_advisory_xact_lock(${key}); SET LOCAL search_path TO ${searchPathOf(target.schema)}; ` +
    `SET LOCAL ${TARGET_TX_SETTING} = 'open'` +
    (target.guardSql ? `; ${target.guardSql}` : '')
  );
}

/** Runs `fn` on a pooled connection; on error rolls back, then rethrows the original error. */
async function withRollbackOnError<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (error) {
    // The original error is what the caller needs; a failed ROLLBACK only means this
    // connection is unusable, so it is destroyed instead of returned to the pool.
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/**
 * Runs `fn` on a dedicated connection holding the session advisory lock, with session
 * `lock_timeout` and `search_path`. The connection is closed afterwards, so no session setting
 * leaks into the pool.
 */
export async function withTargetSession<T>(
  pool: Pool,
  target: MigrationTarget,
  lockTimeoutMs: number,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  quoteSchema(target.schema);
  const key = advisoryLockKey(target.lockKey);
  const client = await pool.connect();
  let locked = false;
  try {
    await client.query(`SET lock_timeout = ${lockTimeout(lockTimeoutMs)}`);
    await client.query('SELECT pg_advisory_lock($1::bigint)', [key]);
    locked = true;
    await client.query(`SET search_path TO ${searchPathOf(target.schema)}`);
    if (target.guardSql) await client.query(target.guardSql);
    return await fn(client);
  } finally {
    try {
      if (locked) await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
    } finally {
      // Destroying the connection also drops the session lock if the unlock above failed.
      client.release(true);
    }
  }
}

function lockKeyLiteral(key: string): string {
  if (!/^-?\d{1,20}$/.test(key)) throw new RangeError(`advisory lock key must be a 64-bit integer, got ${key}`);
  return `${key}::bigint`;
}

function lockTimeout(ms: number): number {
  if (!Number.isInteger(ms) || ms < 0) throw new RangeError(`lockTimeoutMs must be a non-negative integer, got ${ms}`);
  return ms;
}
