/**
 * PostgreSQL's own client tools (pg_dump, pg_restore, psql) for the major version of the server a
 * tenant lives on. A custom-format dump is only guaranteed to restore with a pg_restore of the same
 * major version, and a pg_dump older than its server refuses to run, so the versions must match.
 * Debian keeps every installed major version in /usr/lib/postgresql/<major>/bin; that directory is
 * preferred for the server's major, then PG_CLIENT_BIN_DIR, then PATH.
 */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PreconditionFailedError } from '../errors.js';

const run = promisify(execFile);

/** The client tools a backup or restore uses, all of the server's major version. */
export interface PgTools {
  readonly major: number;
  readonly pgDump: string;
  readonly pgRestore: string;
  readonly psql: string;
}

/** Where to look for the tools, besides Debian's per-version directory. */
export interface PgToolsSearch {
  /** A directory checked after /usr/lib/postgresql/<major>/bin (PG_CLIENT_BIN_DIR). */
  readonly binDir?: string | null;
  /** Directories of PATH; default process.env.PATH's. */
  readonly pathDirs?: readonly string[];
  /** Debian's root of per-version directories; tests point it elsewhere. */
  readonly debianRoot?: string;
}

const TOOLS = ['pg_dump', 'pg_restore', 'psql'] as const;

/** No pg_dump, pg_restore or psql was found for the server's major version. */
export class PgToolsMissingError extends PreconditionFailedError {
  constructor(
    readonly tool: string,
    readonly serverMajor: number,
    searched: readonly string[],
  ) {
    super(
      `${tool} for PostgreSQL ${serverMajor} was not found (looked in ${searched.join(', ') || 'nothing'}); install postgresql-client-${serverMajor} or set PG_CLIENT_BIN_DIR`,
    );
  }
}

/** The tool found is of another major version than the tenant's server. */
export class PgToolsVersionMismatchError extends PreconditionFailedError {
  constructor(
    readonly tool: string,
    readonly toolMajor: number,
    readonly serverMajor: number,
  ) {
    super(
      `${tool} is PostgreSQL ${toolMajor} but the tenant server is PostgreSQL ${serverMajor}; install postgresql-client-${serverMajor} or set PG_CLIENT_BIN_DIR to its bin directory`,
    );
  }
}

/** The major version of a server from its `server_version_num` (150020 → 15; 90624 → 9). */
export function serverMajorOf(serverVersionNum: number): number {
  if (!Number.isInteger(serverVersionNum) || serverVersionNum < 90000) {
    throw new Error(`Unexpected server_version_num ${serverVersionNum}`);
  }
  return Math.floor(serverVersionNum / 10000);
}

/** The major version a tool prints with `--version` (`pg_dump (PostgreSQL) 15.20 (Debian …)` → 15), or null. */
export function toolMajorOf(versionOutput: string): number | null {
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!match) return null;
  const major = Number(match[1]);
  // Before 10 the major version had two parts (9.6); those servers are not supported anyway.
  return major >= 10 ? major : null;
}

/** The directories searched for the tools of `major`, in order. */
export function searchDirsFor(major: number, search: PgToolsSearch = {}): string[] {
  const pathDirs = search.pathDirs ?? (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const dirs = [
    path.join(search.debianRoot ?? '/usr/lib/postgresql', String(major), 'bin'),
    ...(search.binDir ? [search.binDir] : []),
    ...pathDirs,
  ];
  return [...new Set(dirs)];
}

/**
 * Finds pg_dump, pg_restore and psql of the server's major version: the first executable of each
 * name in searchDirsFor's order, checked with `--version`. PgToolsMissingError when one is
 * missing; PgToolsVersionMismatchError when the first one found is of another major version.
 */
export async function resolvePgTools(serverVersionNum: number, search: PgToolsSearch = {}): Promise<PgTools> {
  const major = serverMajorOf(serverVersionNum);
  const dirs = searchDirsFor(major, search);
  const found: Partial<Record<(typeof TOOLS)[number], string>> = {};
  for (const tool of TOOLS) {
    let mismatch: PgToolsVersionMismatchError | null = null;
    for (const dir of dirs) {
      const candidate = path.join(dir, tool);
      if (!(await isExecutable(candidate))) continue;
      const toolMajor = await versionOf(candidate);
      if (toolMajor === major) {
        found[tool] = candidate;
        break;
      }
      mismatch ??= new PgToolsVersionMismatchError(tool, toolMajor ?? 0, major);
    }
    if (!found[tool]) throw mismatch ?? new PgToolsMissingError(tool, major, dirs);
  }
  return { major, pgDump: found.pg_dump!, pgRestore: found.pg_restore!, psql: found.psql! };
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function versionOf(tool: string): Promise<number | null> {
  const { stdout } = await run(tool, ['--version'], { timeout: 10_000 });
  return toolMajorOf(stdout);
}
