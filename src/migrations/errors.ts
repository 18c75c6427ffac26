/**
 * The engine's typed errors, plus the pure helpers that classify pg failures (transient or
 * not) and place them on a line of the file that caused them.
 */
import { AppError, PreconditionFailedError, ValidationError } from '../errors.js';
import type { Drift } from './types.js';

/** One thing wrong with one file of a catalog. */
export interface CatalogProblem {
  readonly file: string;
  readonly message: string;
}

/**
 * A catalog directory holds files the engine cannot accept. `problems` lists every one of them
 * (the loader reports a whole catalog at once); `file` names the first.
 */
export class CatalogError extends AppError<'CATALOG'> {
  readonly problems: readonly CatalogProblem[];

  constructor(
    readonly file: string,
    message: string,
    options?: ErrorOptions & { problems?: readonly CatalogProblem[] },
  ) {
    const problems = options?.problems ?? [{ file, message }];
    super(
      'CATALOG',
      problems.length === 1
        ? `${file}: ${message}`
        : `${message}:\n${problems.map((problem) => `  ${problem.file}: ${problem.message}`).join('\n')}`,
      options,
    );
    this.problems = problems;
  }

  /** One error listing every problem of the catalog in `dir`. */
  static of(dir: string, problems: readonly CatalogProblem[]): CatalogError {
    const [first] = problems;
    if (problems.length === 1 && first) return new CatalogError(first.file, first.message);
    return new CatalogError(first?.file ?? dir, `catalog ${dir} has ${problems.length} problems`, { problems });
  }
}

/** A version asked for (a `--to`, a stamp) is not in the catalog. */
export class UnknownVersionError extends ValidationError {
  constructor(readonly version: string) {
    super(`Unknown migration version "${version}": no such file in the catalog`, 'toVersion');
  }
}

/** A rollback would need a down file that does not exist; nothing was changed. */
export class IrreversibleMigrationError extends PreconditionFailedError {
  constructor(
    readonly version: string,
    readonly file: string,
  ) {
    super(`Cannot roll back ${file}: it has no down file; nothing was changed`);
  }
}

/** Applied migrations no longer match the catalog; the target is blocked until resolved. */
export class DriftError extends PreconditionFailedError {
  constructor(
    readonly schema: string | null,
    readonly drift: readonly Drift[],
  ) {
    const where = schema ? ` on schema ${schema}` : '';
    super(`Migration drift${where}: ${drift.map((d) => d.message).join('; ')}`);
  }
}

/**
 * A file of a transactional group ended the tenant's transaction (a COMMIT or ROLLBACK the
 * parser did not see): what ran before it may be committed without its ledger rows.
 */
export class TransactionClosedError extends AppError<'TRANSACTION_CLOSED'> {
  constructor(
    readonly schema: string,
    readonly file: string,
  ) {
    super(
      'TRANSACTION_CLOSED',
      `Migration ${file} ended the transaction it ran in on schema ${schema}; ` +
        'a file that controls its own transaction must not share one: check the schema and the ledger before retrying',
    );
  }
}

/** The schema is managed by golang-migrate (its own `schema_migrations`); nothing was changed. */
export class ForeignLedgerError extends PreconditionFailedError {
  constructor(
    readonly schema: string,
    options?: ErrorOptions,
  ) {
    super(
      `Schema ${schema} is managed by golang-migrate (its schema_migrations table has version and dirty); ` +
        'adopt it before the control plane migrates it; nothing was changed',
      options,
    );
  }
}

/** The shape of the pg driver's error fields this module reads. */
interface PgErrorLike {
  readonly code?: unknown;
  readonly position?: unknown;
  readonly message?: unknown;
}

/** A migration file failed on a schema; carries the SQLSTATE and the line inside the file. */
export class MigrationFailedError extends AppError<'MIGRATION_FAILED'> {
  readonly sqlState: string | null;
  /** pg's 1-based character position within the file text, when it reported one. */
  readonly position: number | null;
  readonly line: number | null;

  constructor(
    readonly schema: string,
    readonly file: string,
    readonly version: string,
    sql: string,
    cause: unknown,
    /** Character offset of the statement that failed within the file (no-transaction files run statement by statement). */
    statementOffset = 0,
    /** The statement that failed is known (run alone): without a position, report its first line. */
    statementKnown = false,
  ) {
    const pgError = (typeof cause === 'object' && cause !== null ? cause : {}) as PgErrorLike;
    const sqlState = typeof pgError.code === 'string' && /^[0-9A-Z]{5}$/.test(pgError.code) ? pgError.code : null;
    const rawPosition = Number(pgError.position);
    const position = Number.isInteger(rawPosition) && rawPosition > 0 ? rawPosition + statementOffset : null;
    const leading = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/.exec(sql.slice(statementOffset))?.[0].length ?? 0;
    const line =
      position !== null
        ? lineAtPosition(sql, position)
        : statementKnown
          ? lineAtPosition(sql, statementOffset + leading + 1)
          : null;
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'MIGRATION_FAILED',
      `Migration ${file} failed on schema ${schema}${line === null ? '' : ` at line ${line}`}: ${reason}` +
        (sqlState ? ` (SQLSTATE ${sqlState})` : ''),
      { cause },
    );
    this.sqlState = sqlState;
    this.position = position;
    this.line = line;
  }
}

/** The 1-based line of a 1-based character `position` (as pg reports it) within `sql`. */
export function lineAtPosition(sql: string, position: number): number {
  // pg counts characters, not UTF-16 units, so walk code points.
  const before = Array.from(sql).slice(0, Math.max(0, position - 1));
  let line = 1;
  for (const char of before) if (char === '\n') line += 1;
  return line;
}

// Lock timeouts, serialization failures and deadlocks succeed when simply tried again.
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '55P03', '57P01', '57P03']);
const TRANSIENT_NODE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /terminating connection/i,
  /connection.*(closed|ended)/i,
  // pg, for a query on a client whose socket broke or was closed meanwhile.
  /is not queryable/i,
];

/** Whether retrying the same work later may succeed: lock/serialization/deadlock, class 08, lost connections. */
export function isTransientPgError(error: unknown): boolean {
  if (error instanceof MigrationFailedError) return isTransientPgError(error.cause);
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as PgErrorLike).code;
  if (typeof code === 'string') {
    if (TRANSIENT_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
    if (TRANSIENT_NODE_CODES.has(code)) return true;
  }
  const message = (error as PgErrorLike).message;
  if (typeof message === 'string' && TRANSIENT_MESSAGES.some((pattern) => pattern.test(message))) return true;
  // AggregateError from a dual-stack connect: transient when any attempt was.
  if (error instanceof AggregateError) return error.errors.some(isTransientPgError);
  return false;
}
