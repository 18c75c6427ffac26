/**
 * Reads a catalog directory (`NNNN_name.up.sql` / `NNNN_name.down.sql`) into a validated,
 * numerically ordered MigrationCatalog. Parsing is pure; only `loadCatalog` touches the disk.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CatalogError, UnknownVersionError } from './errors.js';
import { splitSqlStatements } from './sql-statements.js';
import type { CatalogWarning, MigrationCatalog, MigrationFile } from './types.js';

const FILE_NAME = /^(\d+)_([A-Za-z0-9_]+)\.(up|down)\.sql$/;
const NO_TRANSACTION = /^--\s*migrate:no-transaction\s*$/;

/** The parts of a catalog file name. */
export interface ParsedFileName {
  readonly version: string;
  readonly order: bigint;
  readonly name: string;
  readonly direction: 'up' | 'down';
}

/** One file read from a catalog directory, before validation. */
export interface CatalogSource {
  readonly fileName: string;
  readonly path: string;
  readonly bytes: Buffer;
}

/** Reads and validates every `.sql` file of `dir`; throws CatalogError naming the first bad file. */
export async function loadCatalog(dir: string): Promise<MigrationCatalog> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new CatalogError(dir, `cannot read catalog directory: ${(error as Error).message}`, { cause: error });
  }
  const sources: CatalogSource[] = [];
  for (const fileName of names.filter((name) => name.endsWith('.sql')).sort()) {
    const filePath = path.join(dir, fileName);
    try {
      sources.push({ fileName, path: filePath, bytes: await readFile(filePath) });
    } catch (error) {
      throw new CatalogError(fileName, `cannot read file: ${(error as Error).message}`, { cause: error });
    }
  }
  return buildCatalog(dir, sources);
}

/** Parses a catalog file name; null when it does not match `NNNN_name.(up|down).sql`. */
export function parseMigrationFileName(fileName: string): ParsedFileName | null {
  const match = FILE_NAME.exec(fileName);
  if (!match) return null;
  const [, version = '', name = '', direction] = match;
  return { version, order: BigInt(version), name, direction: direction === 'down' ? 'down' : 'up' };
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

/** Validates already-read sources (pure) and builds the catalog; throws CatalogError naming the file. */
export function buildCatalog(dir: string, sources: readonly CatalogSource[]): MigrationCatalog {
  const ups = new Map<bigint, { parsed: ParsedFileName; source: CatalogSource }>();
  const downs: { parsed: ParsedFileName; source: CatalogSource }[] = [];
  for (const source of sources) {
    if (!source.fileName.endsWith('.sql')) continue;
    const parsed = parseMigrationFileName(source.fileName);
    if (!parsed) {
      throw new CatalogError(source.fileName, 'file name does not match NNNN_name.up.sql or NNNN_name.down.sql');
    }
    if (source.bytes.toString('utf8').trim() === '') throw new CatalogError(source.fileName, 'file is empty');
    if (parsed.direction === 'down') {
      downs.push({ parsed, source });
      continue;
    }
    const existing = ups.get(parsed.order);
    if (existing) {
      throw new CatalogError(
        source.fileName,
        `duplicate version ${parsed.order}: also used by ${existing.source.fileName}`,
      );
    }
    ups.set(parsed.order, { parsed, source });
  }

  const downByOrder = new Map<bigint, CatalogSource>();
  for (const { parsed, source } of downs) {
    const up = ups.get(parsed.order);
    if (!up || up.parsed.name !== parsed.name || up.parsed.version !== parsed.version) {
      throw new CatalogError(source.fileName, `down file without its up file (${parsed.version}_${parsed.name}.up.sql)`);
    }
    if (downByOrder.has(parsed.order)) throw new CatalogError(source.fileName, 'duplicate down file');
    downByOrder.set(parsed.order, source);
  }

  const files = [...ups.values()]
    .sort((a, b) => (a.parsed.order < b.parsed.order ? -1 : 1))
    .map(({ parsed, source }): MigrationFile => {
      const down = downByOrder.get(parsed.order) ?? null;
      const upSql = source.bytes.toString('utf8');
      const downSql = down ? down.bytes.toString('utf8') : null;
      return {
        version: parsed.version,
        order: parsed.order,
        name: parsed.name,
        upPath: source.path,
        upSql,
        checksum: checksumOf(source.bytes),
        transactional: isTransactional(upSql),
        downPath: down ? down.path : null,
        downSql,
        downTransactional: downSql === null ? true : isTransactional(downSql),
        reversible: down !== null,
      };
    });
  const warnings = files.flatMap((file) => [
    ...(file.transactional ? [] : warningsOf(fileNameOf(file, 'up'), file.upSql)),
    ...(file.downTransactional || file.downSql === null ? [] : warningsOf(fileNameOf(file, 'down'), file.downSql)),
  ]);
  return createCatalog(dir, files, warnings);
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
export function fileNameOf(file: MigrationFile, direction: 'up' | 'down' = 'up'): string {
  return `${file.version}_${file.name}.${direction}.sql`;
}
