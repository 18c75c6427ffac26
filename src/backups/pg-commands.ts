/**
 * Running pg_dump, pg_restore and psql as child processes against a tenant database. The password
 * travels in PGPASSWORD, never on the command line (where `ps` shows it), and errors carry the
 * tool's own message, never the connection string.
 */
import { spawn } from 'node:child_process';
import { AppError } from '../errors.js';

/** A PostgreSQL client tool exited with an error; its stderr (trimmed) is the message. */
export class PgToolError extends AppError<'PG_TOOL_FAILED'> {
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    stderr: string,
  ) {
    super('PG_TOOL_FAILED', `${tool} failed (exit ${exitCode ?? 'signal'}): ${summarize(stderr)}`);
  }
}

/** The connection of a tool: a URL without its password, and the password for PGPASSWORD. */
export interface ToolConnection {
  readonly url: string;
  readonly password: string | null;
}

/** Splits a connection string into the URL a tool gets and the password it gets through its environment. */
export function toolConnectionOf(connectionString: string): ToolConnection {
  const url = new URL(connectionString);
  const password = url.password ? decodeURIComponent(url.password) : null;
  url.password = '';
  return { url: url.toString(), password };
}

/** Runs `tool` with `args`; resolves when it exits 0, throws PgToolError with its stderr otherwise. */
export function runPgTool(
  tool: string,
  args: readonly string[],
  connection: ToolConnection | null,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PGAPPNAME: 'tenant-control-plane-backup' };
    delete env.PGPASSWORD;
    if (connection?.password) env.PGPASSWORD = connection.password;
    const child = spawn(tool, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      // The first errors say what went wrong; a runaway stream is cut.
      if (stderr.length < 16_384) stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new PgToolError(tool.split('/').at(-1) ?? tool, code, stderr));
    });
  });
}

function summarize(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.slice(0, 5).join(' | ') || 'no message';
}
