/**
 * `npm run migrate -- token create`: the way in for a new user, run as a real CLI process
 * against the control plane, its token then used against the API.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useApiHarness } from '../graphql/harness.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
// Each case starts `tsx` processes, which takes seconds on a busy 2-core machine.
const CLI_TEST_TIMEOUT_MS = 120_000;

interface CliOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: string[], env: Record<string, string>): Promise<CliOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, ['src/cli/migrate.ts', ...args], {
      cwd: ROOT,
      // LOG_LEVEL as a user has it: nothing but the token may reach stdout anyway.
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
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

describe('npm run migrate -- token create', () => {
  const api = useApiHarness();
  const env = () => ({ DATABASE_URL: api.config.databaseUrl, TENANT_DATABASE_URL: api.config.databaseUrl });

  it(
    'prints a working token once, and nothing else, on stdout; the call is audited as cli',
    async () => {
      const result = await runCli(['token', 'create', '--name', 'first-admin', '--role', 'ADMIN'], env());
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^cpt_[A-Za-z0-9_-]+\n$/);
      const token = result.stdout.trim();

      const viewer = await api.gql('{ viewer { name role } }', {}, token);
      expect(viewer.data?.viewer).toEqual({ name: 'first-admin', role: 'ADMIN' });
      const created = await api.gql(
        'mutation { createApiToken(input: { name: "made-by-first", role: VIEWER }) { __typename } }',
        {},
        token,
      );
      expect(created.data?.createApiToken.__typename).toBe('CreateApiTokenSuccess');

      const row = await api.app.db.apiToken.findUniqueOrThrow({ where: { name: 'first-admin' } });
      expect(row).toMatchObject({ role: 'ADMIN', format: 2 });
      expect(row.createdBy).toMatch(/^cli:/);
      const audit = await api.app.db.auditLog.findFirstOrThrow({
        where: { action: 'createApiToken', actorKind: 'cli' },
      });
      expect(audit).toMatchObject({ outcome: 'success', targetType: 'ApiToken', targetId: row.id });
      expect(JSON.stringify(audit.input)).not.toContain(token);
      expect(`${result.stderr}${JSON.stringify(audit.input)}`).not.toContain(token);
    },
    CLI_TEST_TIMEOUT_MS,
  );

  it(
    'refuses bad arguments as usage errors (exit 2) and creates nothing',
    async () => {
      const before = await api.app.db.apiToken.count();
      const cases = [
        ['token', 'create', '--name', '   ', '--role', 'ADMIN'],
        ['token', 'create', '--name', 'x', '--role', 'BOSS'],
        ['token', 'revoke', '--name', 'x'],
      ];
      const results = await Promise.all(cases.map((args) => runCli(args, env())));
      for (const [index, result] of results.entries()) {
        const args = cases[index] ?? [];
        expect(result.code, args.join(' ')).toBe(2);
        expect(result.stdout, args.join(' ')).toBe('');
        expect(result.stderr).toMatch(/^error: /);
        expect(result.stderr).toContain('Usage:');
      }
      expect(await api.app.db.apiToken.count()).toBe(before);
    },
    CLI_TEST_TIMEOUT_MS,
  );

  it(
    'refuses a taken name with one error line (exit 1) and prints no token',
    async () => {
      await api.createToken('VIEWER', 'taken-name');
      const result = await runCli(['token', 'create', '--name', 'taken-name', '--role', 'ADMIN'], env());
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe('error: An API token named "taken-name" already exists\n');
      expect(await api.app.db.apiToken.count({ where: { name: 'taken-name' } })).toBe(1);
    },
    CLI_TEST_TIMEOUT_MS,
  );
});
