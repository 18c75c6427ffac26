/**
 * The migration engine's public types. The engine knows only `pg` and SQL files: it serves the
 * control plane's own catalog (migrations/control_plane) and every tenant's (migrations/tenant).
 */
import type { Pool, PoolClient, QueryResult } from 'pg';

/** One versioned step of a catalog: an up file and, when reversible, its down file. */
export interface MigrationFile {
  /** The leading number exactly as written in the file name ("0003"). */
  readonly version: string;
  /** The numeric value of `version`, for ordering ("0002" < "0010"). */
  readonly order: bigint;
  /** The rest of the file name without the `.up.sql` suffix ("add_priority"). */
  readonly name: string;
  readonly upPath: string;
  readonly upSql: string;
  /** SHA-256 hex of the up file's bytes. */
  readonly checksum: string;
  /** False when the up file's first line is `-- migrate:no-transaction` or it has its own BEGIN/COMMIT. */
  readonly transactional: boolean;
  readonly downPath: string | null;
  readonly downSql: string | null;
  /** Likewise for the down file. An empty down file is a no-op step. */
  readonly downTransactional: boolean;
  readonly reversible: boolean;
  /** The optional `NNNN_name.verify.sql`, run right after the up file (same transaction when there is one). */
  readonly verifyPath: string | null;
  readonly verifySql: string | null;
  readonly verifiable: boolean;
}

/** Something a catalog file does that works but is risky; the CLI's `plan` and the API log show it. */
export interface CatalogWarning {
  /** The file name, e.g. `0004_index_orders.up.sql`. */
  readonly file: string;
  /** 1-based line of the statement. */
  readonly line: number;
  readonly message: string;
}

/** An ordered, validated set of migration files. */
export interface MigrationCatalog {
  readonly dir: string;
  readonly files: readonly MigrationFile[];
  /** Risky but valid statements found at load (e.g. a non-idempotent CREATE INDEX CONCURRENTLY). */
  readonly warnings: readonly CatalogWarning[];
  /** The highest version, or null for an empty catalog. */
  readonly latest: string | null;
  /** Finds a file by version; "3", "03" and "0003" all name version 3. */
  find(version: string): MigrationFile | undefined;
  /** Like `find`, but throws UnknownVersionError. */
  require(version: string): MigrationFile;
}

/** A row of the ledger table (`control_plane_ledger`, or LEDGER_TABLE) inside a migrated schema. */
export interface LedgerEntry {
  readonly version: string;
  readonly name: string;
  readonly checksum: string;
  readonly appliedAt: Date;
  readonly executionMs: number;
}

export const DriftKind = {
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  MISSING_FROM_CATALOG: 'MISSING_FROM_CATALOG',
} as const;
export type DriftKind = (typeof DriftKind)[keyof typeof DriftKind];

export interface Drift {
  readonly kind: DriftKind;
  readonly version: string;
  readonly name: string;
  readonly message: string;
}

export const TransactionMode = { PER_TENANT: 'PER_TENANT', PER_MIGRATION: 'PER_MIGRATION' } as const;
export type TransactionMode = (typeof TransactionMode)[keyof typeof TransactionMode];

/**
 * Where a ledger lives: a schema inside the database the pool connects to. `lockKey` names
 * the tenant for the advisory lock (e.g. "tenants/tenant_acme" or "tenant_db_acme/public").
 */
export interface MigrationTarget {
  readonly schema: string;
  readonly lockKey: string;
  /** The ledger table's name in `schema` (the deployment's LEDGER_TABLE); default `control_plane_ledger`. */
  readonly ledgerTable?: string;
  /**
   * One statement run right after the tenant's lock is taken, in the same round trip, before
   * anything is read or applied (the control plane's ownership check); raising refuses the target.
   */
  readonly guardSql?: string;
}

export interface MigrateOptions {
  /** Stop at this version (inclusive); default: the catalog's latest. */
  readonly toVersion?: string | null;
  readonly mode?: TransactionMode;
  /** `SET LOCAL lock_timeout`; default 5000. */
  readonly lockTimeoutMs?: number;
  /** Called after each file is committed (PER_MIGRATION, no-transaction) or after the group commits. */
  readonly onApplied?: (step: AppliedStep) => void | Promise<void>;
  /**
   * Where the caller believes the target is (the control plane's cached version; null for a new,
   * empty ledger). When given, the whole move is first tried as one round trip guarded by that
   * belief (see one-trip.ts); a wrong belief only costs the careful path.
   */
  readonly expectedVersion?: string | null;
  /**
   * Provisioning: also make the target's database safe to share (the extensions schema exists,
   * nobody but its owner may CREATE in `public`), in the same round trip as the first files.
   */
  readonly prepareDatabase?: boolean;
}

export interface AppliedStep {
  readonly version: string;
  readonly name: string;
  readonly executionMs: number;
}

export interface MigrateResult {
  /** Highest applied version before, or null. */
  readonly fromVersion: string | null;
  /** Highest applied version after, or null. */
  readonly toVersion: string | null;
  /** The steps this call applied (or reverted), in the order it ran them. */
  readonly steps: readonly AppliedStep[];
}

export interface Plan {
  readonly direction: 'up' | 'down';
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  readonly steps: readonly MigrationFile[];
  readonly drift: readonly Drift[];
}

export interface TargetStatusReport {
  readonly currentVersion: string | null;
  readonly applied: readonly (LedgerEntry & { readonly checksumMatches: boolean })[];
  readonly pending: readonly MigrationFile[];
  readonly drift: readonly Drift[];
}

export type Queryable = Pool | PoolClient;

/**
 * Statements sent after a move's COMMIT in the same round trip, on the same connection (the
 * one-trip path only): they see the committed end state without another round trip or pool
 * checkout. Their failure never fails the move: it is handed back as `afterCommit.error`.
 */
export interface ReadAfterCommit<T> {
  /** The statements for this connection (it may have prepared a statement on an earlier use). */
  sql(client: PoolClient): string;
  /** The value, from the results of `sql`'s statements once they all succeeded on `client`. */
  read(client: PoolClient, results: readonly QueryResult[]): T;
}

/** What became of a `ReadAfterCommit`. */
export type AfterCommitRead<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: unknown };
