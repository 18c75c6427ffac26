/**
 * Provisioning a tenant's home: create its schema (SCHEMA isolation) or its database (DATABASE
 * isolation), then apply the whole catalog. Every step tolerates having run before, so a retry
 * after a failure or a crash simply carries on.
 */
import pg from 'pg';
import { quoteSchema } from '../db/pg.js';
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  LEDGER_TABLE,
  TransactionMode,
  advisoryLockKey,
  ensureDatabase,
  migrateUp,
} from '../migrations/index.js';
import { ensureAndReadLedgerSql } from '../migrations/ledger.js';
import { ledgerTargetOf, type TenantDatabaseLocation as LedgerLocation } from './ledger-target.js';
import type {
  AppliedStep,
  MigrateOptions,
  MigrateResult,
  MigrationCatalog,
  MigrationTarget,
} from '../migrations/index.js';

/** A tenant database row as the provisioner needs it. */
export interface TenantDatabaseLocation extends LedgerLocation {
  readonly isolation: 'SCHEMA' | 'DATABASE';
}

export interface ProvisionTenantInput {
  readonly location: TenantDatabaseLocation;
  /** The tenant database's decrypted connection string (its own database for DATABASE isolation). */
  readonly connectionString: string;
  readonly pool: pg.Pool;
  readonly catalog: MigrationCatalog;
  readonly options?: Omit<MigrateOptions, 'toVersion'>;
}

/**
 * Creates the tenant's database when DATABASE-isolated, then its schema and ledger, and applies
 * every catalog file. A tenant whose ledger is empty gets all of it in one round trip (see
 * provisionFresh); anything else, or any failure there, goes through the engine's migrateUp,
 * which creates the schema under the tenant's advisory lock and reports failures by file.
 */
export async function provisionTenant({
  location,
  connectionString,
  pool,
  catalog,
  options = {},
}: ProvisionTenantInput): Promise<MigrateResult> {
  if (location.isolation === 'DATABASE') await ensureDatabase(connectionString);
  const target = ledgerTargetOf(location);
  const fresh = await provisionFresh(pool, target, catalog, options);
  if (fresh) {
    for (const step of fresh.steps) await options.onApplied?.(step);
    return fresh;
  }
  return migrateUp(pool, target, catalog, { ...options, toVersion: catalog.latest });
}

// Raised by the fresh path's guard when the ledger already has rows: not a new tenant.
const NOT_FRESH_SQLSTATE = 'CPNF0';

/**
 * The common case in one round trip: under the tenant's advisory lock, ensure the schema and
 * ledger, check the ledger is empty, run every catalog file and insert their ledger rows (each
 * file timed by server-side clock marks), and commit, all in one string, so a new tenant costs one
 * transaction's round trip instead of three. It is one transaction: it commits whole or not at
 * all. Returns null, having rolled back, when it does not apply (an empty catalog, a
 * no-transaction file, PER_MIGRATION, a ledger with rows) or anything in it failed; the caller
 * then takes the engine's path, which plans from the ledger and names a failing file.
 */
async function provisionFresh(
  pool: pg.Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
  options: Omit<MigrateOptions, 'toVersion'>,
): Promise<MigrateResult | null> {
  const files = catalog.files;
  const mode = options.mode ?? TransactionMode.PER_TENANT;
  if (
    files.length === 0 ||
    mode !== TransactionMode.PER_TENANT ||
    files.some((file) => !file.transactional)
  ) {
    return null;
  }
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (!Number.isSafeInteger(lockTimeoutMs) || lockTimeoutMs < 0) {
    throw new RangeError(`lockTimeoutMs must be a non-negative integer, got ${lockTimeoutMs}`);
  }
  const schema = quoteSchema(target.schema);
  const ledger = `${schema}.${LEDGER_TABLE}`;
  // Transaction-local settings hold each file's end time; the ledger rows are computed from them.
  const mark = (i: number) => `SELECT set_config('cp.provision_mark_${i}', clock_timestamp()::text, true)`;
  const marked = (i: number) => `current_setting('cp.provision_mark_${i}')::timestamptz`;
  const rows = files.map((file, i) => {
    const ms = `greatest(0, round(extract(epoch FROM ${marked(i + 1)} - ${marked(i)}) * 1000))::int`;
    return `(${pg.escapeLiteral(file.version)}, ${pg.escapeLiteral(file.name)}, ${pg.escapeLiteral(file.checksum)}, ${ms})`;
  });
  const sql = [
    'BEGIN',
    `SET LOCAL lock_timeout = ${lockTimeoutMs}`,
    `SELECT pg_advisory_xact_lock(${BigInt(advisoryLockKey(target.lockKey)).toString()}::bigint)`,
    `SET LOCAL search_path TO ${schema}, public`,
    ensureAndReadLedgerSql(target.schema),
    `DO $cp$ BEGIN IF EXISTS (SELECT 1 FROM ${ledger}) THEN
       RAISE EXCEPTION 'the ledger is not empty' USING ERRCODE = '${NOT_FRESH_SQLSTATE}'; END IF; END $cp$`,
    mark(0),
    // "\n;" ends a file whose last line is a comment or lacks its semicolon.
    ...files.map((file, i) => `${file.upSql}\n;${mark(i + 1)}`),
    `INSERT INTO ${ledger} (version, name, checksum, execution_ms) VALUES ${rows.join(', ')}
       RETURNING version, name, execution_ms`,
    'COMMIT',
  ].join(';\n');

  const results = await runOrRollBack(pool, sql);
  if (!results) return null;
  const inserted = (results.at(-2)?.rows ?? []) as { version: string; execution_ms: number }[];
  const executionMs = new Map(inserted.map((row) => [row.version, row.execution_ms]));
  const steps: AppliedStep[] = files.map((file) => ({
    version: file.version,
    name: file.name,
    executionMs: executionMs.get(file.version) ?? 0,
  }));
  return { fromVersion: null, toVersion: files.at(-1)?.version ?? null, steps };
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
