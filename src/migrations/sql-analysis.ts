/**
 * What a catalog file does to transactions, read with PostgreSQL's own parser (libpg-query,
 * WASM, nothing loaded at run time): top-level BEGIN/COMMIT/SAVEPOINT…, and statements that
 * cannot run inside a transaction block. Pure once `loadSqlParser` has resolved.
 */
import { loadModule, parseSync } from 'libpg-query';

/** A top-level statement worth reporting, with its 1-based line in the file. */
export interface SqlFinding {
  readonly line: number;
  /** E.g. "BEGIN", "COMMIT", "CREATE INDEX CONCURRENTLY". */
  readonly statement: string;
}

/** The parser's view of one file. */
export interface SqlAnalysis {
  /** Top-level statements, comments-only files have none. */
  readonly statementCount: number;
  /** Top-level transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, …): the file manages its own transaction. */
  readonly transactionControl: readonly SqlFinding[];
  /** Statements PostgreSQL refuses inside a transaction block (… CONCURRENTLY, VACUUM, …). */
  readonly outsideTransactionOnly: readonly SqlFinding[];
}

/** The file does not parse; `line` is where the parser stopped. */
export class SqlSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'SqlSyntaxError';
  }
}

let loaded: Promise<void> | null = null;
let ready = false;

/** Loads the parser's WASM module once per process; idempotent. */
export async function loadSqlParser(): Promise<void> {
  loaded ??= loadModule().then(() => {
    ready = true;
  });
  await loaded;
}

const TRANSACTION_KINDS: Record<string, string> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE SAVEPOINT',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK TO SAVEPOINT',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

interface RawStatement {
  readonly stmt: Record<string, Record<string, unknown>>;
  readonly stmt_location?: number;
}

/** Parses `sql` and lists its transaction control; throws SqlSyntaxError when it does not parse. */
export function analyzeSql(sql: string): SqlAnalysis {
  if (!ready) throw new Error('The SQL parser is not loaded: await loadSqlParser() first');
  if (sql.trim() === '') return { statementCount: 0, transactionControl: [], outsideTransactionOnly: [] };
  const bytes = Buffer.from(sql, 'utf8');
  let statements: RawStatement[];
  try {
    statements = ((parseSync(sql) as { stmts?: RawStatement[] }).stmts ?? []) as RawStatement[];
  } catch (error) {
    const cursor = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition ?? 0;
    throw new SqlSyntaxError((error as Error).message, lineAt(sql.slice(0, cursor)));
  }
  const transactionControl: SqlFinding[] = [];
  const outsideTransactionOnly: SqlFinding[] = [];
  for (const raw of statements) {
    const [type, node] = Object.entries(raw.stmt)[0] ?? ['', {}];
    const line = () => lineOfStatement(bytes, raw.stmt_location ?? 0);
    if (type === 'TransactionStmt') {
      transactionControl.push({ line: line(), statement: TRANSACTION_KINDS[String(node.kind)] ?? 'transaction control' });
      continue;
    }
    const outside = outsideTransactionStatement(type, node);
    if (outside) outsideTransactionOnly.push({ line: line(), statement: outside });
  }
  return { statementCount: statements.length, transactionControl, outsideTransactionOnly };
}

function outsideTransactionStatement(type: string, node: Record<string, unknown>): string | null {
  if (type === 'IndexStmt' && node.concurrent === true) return 'CREATE INDEX CONCURRENTLY';
  if (type === 'DropStmt' && node.concurrent === true) return 'DROP INDEX CONCURRENTLY';
  if (type === 'ReindexStmt' && JSON.stringify(node.params ?? []).includes('"concurrently"')) return 'REINDEX CONCURRENTLY';
  if (type === 'VacuumStmt' && node.is_vacuumcmd === true) return 'VACUUM';
  if (type === 'CreatedbStmt') return 'CREATE DATABASE';
  if (type === 'DropdbStmt') return 'DROP DATABASE';
  if (type === 'AlterSystemStmt') return 'ALTER SYSTEM';
  return null;
}

const LEADING_NOISE = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;

/** The 1-based line of the first token at or after byte `location` (libpg-query counts bytes). */
function lineOfStatement(bytes: Buffer, location: number): number {
  const before = bytes.subarray(0, location).toString('utf8');
  const rest = bytes.subarray(location).toString('utf8');
  return lineAt(before + (LEADING_NOISE.exec(rest)?.[0] ?? ''));
}

function lineAt(text: string): number {
  let line = 1;
  for (const char of text) if (char === '\n') line += 1;
  return line;
}
