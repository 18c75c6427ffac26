/**
 * `npm run migrate -- servers list|add`, run as a real CLI process against the control plane.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { useSecondServer } from '../../helpers/second-server.js';
import { useTestDatabase } from '../../helpers/database.js';

// This file reads the CLI's log lines.
const runCliLogging = (args: string[], env: Record<string, string>) =>
  runCli(args, { LOG_LEVEL: 'info', ...env });

// Each case starts `tsx` processes, which takes seconds on a busy 2-core machine.
const CLI_TEST_TIMEOUT_MS = 120_000;

describe('npm run migrate -- servers', () => {
  const database = useTestDatabase({ controlPlane: true });
  const second = useSecondServer();
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const env = () => ({ DATABASE_URL: database.url, TENANT_DATABASE_URL: database.url });

  it(
    'adds a server after checking it, lists it with its budget, and never prints the URL',
    async () => {
      const url = second.url.replace('postgres@', `postgres:${password}@`);
      const added = await runCliLogging(
        ['servers', 'add', '--name', 'second', '--url', url, '--max-concurrent', '3'],
        env(),
      );
      expect(added.stderr).toBe('');
      expect(added.stdout).toBe('registered second (127.0.0.1:5433, 3 at once)\n');
      expect(added.code).toBe(0);

      const listed = await runCliLogging(['servers', 'list'], env());
      expect(listed.code).toBe(0);
      const lines = listed.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^NAME\s+HOST\s+ACCEPTING\s+MAX CONCURRENT\s+TENANTS$/);
      expect(lines.slice(1).map((line) => line.split(/\s+/))).toEqual([
        ['default', '127.0.0.1:5432', 'yes', '32', '0'],
        ['second', '127.0.0.1:5433', 'yes', '3', '0'],
      ]);
      for (const outcome of [added, listed]) expect(outcome.stdout + outcome.stderr).not.toContain(password);
    },
    CLI_TEST_TIMEOUT_MS,
  );

  it(
    'refuses an unreachable server with one error line (exit 1) and saves nothing',
    async () => {
      const url = `postgresql://postgres:${password}@127.0.0.1:1/postgres`;
      const result = await runCliLogging(['servers', 'add', '--name', 'nowhere', '--url', url], env());
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: Could not connect to the server: .+\n$/);
      expect(result.stderr).not.toContain(password);
      const listed = await runCliLogging(['servers', 'list'], env());
      expect(listed.stdout).not.toContain('nowhere');
    },
    CLI_TEST_TIMEOUT_MS,
  );
});
