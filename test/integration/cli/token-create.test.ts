/**
 * `npm run migrate -- token create`: the way in for a new user, run as a real CLI process
 * against the control plane, its token then used against the API.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { useApiHarness } from '../graphql/harness.js';

// LOG_LEVEL as a user has it: nothing but the token may reach stdout anyway.
const runCliLogging = (args: string[], env: Record<string, string>) =>
  runCli(args, { LOG_LEVEL: 'info', ...env });

// Each case starts `tsx` processes, which takes seconds on a busy 2-core machine.
const CLI_TEST_TIMEOUT_MS = 120_000;

describe('npm run migrate -- token create', () => {
  const api = useApiHarness();
  const env = () => ({ DATABASE_URL: api.config.databaseUrl, TENANT_DATABASE_URL: api.config.databaseUrl });

  it(
    'prints a working token once, and nothing else, on stdout; the call is audited as cli',
    async () => {
      const result = await runCliLogging(
        ['token', 'create', '--name', 'first-admin', '--role', 'ADMIN'],
        env(),
      );
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
      const results = await Promise.all(cases.map((args) => runCliLogging(args, env())));
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
      const result = await runCliLogging(
        ['token', 'create', '--name', 'taken-name', '--role', 'ADMIN'],
        env(),
      );
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe('error: An API token named "taken-name" already exists\n');
      expect(await api.app.db.apiToken.count({ where: { name: 'taken-name' } })).toBe(1);
    },
    CLI_TEST_TIMEOUT_MS,
  );
});
