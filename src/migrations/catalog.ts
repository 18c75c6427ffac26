/**
 * Reads a catalog directory into a validated, numerically ordered MigrationCatalog. File names
 * follow golang-migrate's grammar, `{version}_{title}.{up|down|verify}.sql`, with any title.
 * Parsing is pure (once the SQL parser is loaded); only `loadCatalog` touches the disk.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CatalogError, UnknownVersionError } from './errors.js';
import type { CatalogProblem } from './errors.js';
import { SqlSyntaxError, analyzeSql, loadSqlParser } from './sql-analysis.js';
import type { SqlAnalysis } from './sql-analysis.js';
import { splitSqlStatements } from './sql-statements.js';
import type { CatalogWarning, MigrationCatalog, MigrationFile } from './types.js';

const FILE_NAME = /^(\d+)_(.+)\.(up|down|verify)\.sql$/;
// Titles reach messages and the ledger: printable characters only.
const TITLE = /^[^\p{Cc}/\\]+$/u;
const NO_TRANSACTION = /^--\s*migrate:no-transaction\s*$/;

/** The kind of a catalog file: its up script, its down script, or its verify script. */
export type FileKind = 'up' | 'down' | 'verify';

/** The parts of a catalog file name. */
export interface ParsedFileName {
  readonly version: string;
  readonly order: bigint;
  readonly name: string;
  readonly direction: FileKind;
}

/** One file read from a catalog directory, before validation. */
export interface CatalogSource {
  readonly fileName: string;
  readonly path: string;
  readonly bytes: Buffer;
}

/** Reads and validates every `.sql` file of `dir`; throws one CatalogError listing every bad file. */
export async function loadCatalog(dir: string): Promise<MigrationCatalog> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new CatalogError(dir, `cannot read catalog directory: ${(error as Error).message}`, { cause: error });
  }
  const sources: CatalogSource[] = [];
  const problems: CatalogProblem[] = [];
  for (const fileName of names.filter((name) => name.endsWith('.sql')).sort()) {
    const filePath = path.join(dir, fileName);
    try {
      sources.push({ fileName, path: filePath, bytes: await readFile(filePath) });
    } catch (error) {
      problems.push({ file: fileName, message: `cannot read file: ${(error as Error).message}` });
    }
  }
  if (problems.length > 0) throw CatalogError.of(dir, problems);
  await loadSqlParser();
  return buildCatalog(dir, sources);
}

/** Parses a catalog file name; null when it does not match `{version}_{title}.{up|down|verify}.sql`. */
export function parseMigrationFileName(fileName: string): ParsedFileName | null {
  const match = FILE_NAME.exec(fileName);
  if (!match) return null;
  const [, version = '', name = '', direction = 'up'] = match;
  if (!TITLE.test(name) || version.length > 64) return null;
  return { version, order: BigInt(version), name, direction: direction as FileKind };
}

/** Whether a file's first line is `-- migrate:no-transaction`. */
export function isTransactional(sql: string): boolean {
  const firstLine = sql.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  return !NO_TRANSACTION.test(firstLine.trim());
}

/** SHA-256 hex of a file's bytes, the checksum kept in the ledger. */
export function checksumOf(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface Entry {
  readonly parsed: ParsedFileName;
  readonly source: CatalogSource;
  readonly sql: string;
  readonly analysis: SqlAnalysis | null;
}

/**
 * Validates already-read sources (pure; `loadSqlParser` must have resolved) and builds the
 * catalog. Collects every problem first, then throws one CatalogError listing them all.
 */
export function buildCatalog(dir: string, sources: readonly CatalogSource[]): MigrationCatalog {
  const problems: CatalogProblem[] = [];
  const warnings: CatalogWarning[] = [];
  const byKind: Record<FileKind, Map<bigint, Entry>> = { up: new Map(), down: new Map(), verify: new Map() };
  const problem = (file: string, message: string) => problems.push({ file, message });

  for (const source of [...sources].sort((a, b) => (a.fileName < b.fileName ? -1 : 1))) {
    if (!source.fileName.endsWith('.sql')) continue;
    const parsed = parseMigrationFileName(source.fileName);
    if (!parsed) {
      problem(source.fileName, 'file name does not match {version}_{title}.up.sql, .down.sql or .verify.sql');
      continue;
    }
    const sql = source.bytes.toString('utf8');
    if (parsed.direction !== 'down' && sql.trim() === '') {
      problem(source.fileName, 'file is empty (only a down file may be empty: a no-op step)');
      continue;
    }
    const existing = byKind[parsed.direction].get(parsed.order);
    if (existing) {
      problem(source.fileName, `duplicate version ${parsed.order}: also used by ${existing.source.fileName}`);
      continue;
    }
    let analysis: SqlAnalysis | null = null;
    try {
      analysis = analyzeSql(sql);
    } catch (error) {
      if (!(error instanceof SqlSyntaxError)) throw error;
      // The tenant's server judges syntax (its version may differ from the parser's): warn only.
      warnings.push({
        file: source.fileName,
        line: error.line,
        message: `${source.fileName} line ${error.line}: the SQL parser cannot read it (${error.message}); its transaction control was not checked`,
      });
    }
    byKind[parsed.direction].set(parsed.order, { parsed, source, sql, analysis });
  }

  for (const [kind, entries] of [['down', byKind.down], ['verify', byKind.verify]] as const) {
    for (const [order, entry] of entries) {
      const up = byKind.up.get(order);
      if (!up) {
        problem(entry.source.fileName, `${kind} file without an up file of version ${entry.parsed.version}`);
      } else if (up.parsed.name !== entry.parsed.name) {
        warnings.push({
          file: entry.source.fileName,
          line: 1,
          message: `${entry.source.fileName}: title differs from its up file ${up.source.fileName}; paired by version`,
        });
      }
    }
  }

  const files: MigrationFile[] = [];
  for (const up of [...byKind.up.values()].sort((a, b) => (a.parsed.order < b.parsed.order ? -1 : 1))) {
    const down = byKind.down.get(up.parsed.order) ?? null;
    const verify = byKind.verify.get(up.parsed.order) ?? null;
    const upMode = modeOf(up, warnings);
    const downMode = down ? modeOf(down, warnings) : { transactional: true };
    if (verify) {
      const found = [...(verify.analysis?.transactionControl ?? []), ...(verify.analysis?.outsideTransactionOnly ?? [])][0];
      if (found) problem(verify.source.fileName, `line ${found.line}: a verify script may not run ${found.statement}`);
    }
    files.push({
      version: up.parsed.version,
      order: up.parsed.order,
      name: up.parsed.name,
      upPath: up.source.path,
      upSql: up.sql,
      checksum: checksumOf(up.source.bytes),
      transactional: upMode.transactional,
      downPath: down ? down.source.path : null,
      downSql: down ? down.sql : null,
      downTransactional: downMode.transactional,
      reversible: down !== null,
      verifyPath: verify ? verify.source.path : null,
      verifySql: verify ? verify.sql : null,
      verifiable: verify !== null,
    });
  }
  if (problems.length > 0) {
    throw CatalogError.of(
      dir,
      problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)),
    );
  }
  for (const file of files) {
    if (!file.transactional) warnings.push(...warningsOf(fileNameOf(file, 'up'), file.upSql));
    if (!file.downTransactional && file.downSql !== null) warnings.push(...warningsOf(fileNameOf(file, 'down'), file.downSql));
  }
  return createCatalog(dir, files, warnings);
}

/**
 * Whether a file runs inside the engine's transaction: not when it says `-- migrate:no-transaction`,
 * nor when it has its own BEGIN/COMMIT (golang-migrate runs files unwrapped, and a COMMIT inside
 * ours would end it part-way), nor when it holds a statement PostgreSQL refuses in a transaction
 * block (CREATE INDEX CONCURRENTLY…), which golang-migrate catalogs ship without a marker. Either
 * of the last two is reported at load as a warning naming the file and line.
 */
function modeOf(entry: Entry, warnings: CatalogWarning[]): { transactional: boolean } {
  if (!isTransactional(entry.sql)) return { transactional: false };
  const control = entry.analysis?.transactionControl[0];
  const outside = entry.analysis?.outsideTransactionOnly[0];
  const found = control ?? outside;
  if (!found) return { transactional: true };
  const why = control
    ? 'the file controls its own transaction'
    : `${found.statement} cannot run inside a transaction block`;
  warnings.push({
    file: entry.source.fileName,
    line: found.line,
    message:
      `${entry.source.fileName} line ${found.line}: ${found.statement}: ${why}, so it runs unwrapped like a ` +
      '-- migrate:no-transaction file, statement by statement, its ledger row after it',
  });
  return { transactional: false };
}

// A CONCURRENTLY build that fails leaves an INVALID index; without IF NOT EXISTS the replay fails on it.
const NON_IDEMPOTENT_CONCURRENT_INDEX = /^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?!IF\s+NOT\s+EXISTS\b)/i;
const LEADING_COMMENTS = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;

/**
 * Warnings for a no-transaction file: one that fails half-way is replayed from its first
 * statement, so every statement must be idempotent.
 */
function warningsOf(fileName: string, sql: string): CatalogWarning[] {
  const warnings: CatalogWarning[] = [];
  for (const statement of splitSqlStatements(sql)) {
    const leading = LEADING_COMMENTS.exec(statement.text)?.[0].length ?? 0;
    if (!NON_IDEMPOTENT_CONCURRENT_INDEX.test(statement.text.slice(leading))) continue;
    const line = sql.slice(0, statement.offset + leading).split('\n').length;
    warnings.push({
      file: fileName,
      line,
      message:
        `${fileName} line ${line}: CREATE INDEX CONCURRENTLY without IF NOT EXISTS; a no-transaction file ` +
        'that fails half-way is replayed from its first statement, so make every statement idempotent',
    });
  }
  return warnings;
}

/** Wraps ordered files in the MigrationCatalog interface (find/require by numeric version). */
export function createCatalog(
  dir: string,
  files: readonly MigrationFile[],
  warnings: readonly CatalogWarning[] = [],
): MigrationCatalog {
  const byOrder = new Map(files.map((file) => [file.order, file]));
  function find(version: string): MigrationFile | undefined {
    const order = parseVersion(version);
    return order === null ? undefined : byOrder.get(order);
  }
  return Object.freeze({
    dir,
    files: Object.freeze([...files]),
    warnings: Object.freeze([...warnings]),
    latest: files.at(-1)?.version ?? null,
    find,
    require(version: string): MigrationFile {
      const file = find(version);
      if (!file) throw new UnknownVersionError(version);
      return file;
    },
  });
}

/** The numeric value of a version string ("0003" -> 3n); null when it is not all digits. */
export function parseVersion(version: string): bigint | null {
  return /^\d{1,64}$/.test(version.trim()) ? BigInt(version.trim()) : null;
}

/** The file name of a catalog file's up (or down) script, as shown in messages. */
export function fileNameOf(file: MigrationFile, direction: FileKind = 'up'): string {
  // A down file may carry another title than its up file: name it as it is on disk.
  const onDisk = direction === 'up' ? file.upPath : direction === 'down' ? file.downPath : file.verifyPath;
  return onDisk ? path.basename(onDisk) : `${file.version}_${file.name}.${direction}.sql`;
}
