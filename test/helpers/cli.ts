/** Runs `npm run migrate -- …` as a real process (tsx, as the npm script does) for CLI tests. */
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

/** What a CLI process left: its exit code and everything it printed. */
export interface CliOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with `args` and the process environment plus `env` (LOG_LEVEL `silent` unless set). */
export function runCli(args: readonly string[], env: Record<string, string>): Promise<CliOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, ['src/cli/migrate.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
