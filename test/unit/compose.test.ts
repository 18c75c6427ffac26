import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
const composePath = `${root}docker-compose.yml`;
// Merge keys (`<<: *app`) are how the app services share their settings.
const compose = parse(readFileSync(composePath, 'utf8'), { merge: true }) as Compose;
const services = compose?.services ?? {};
const configKeys = readEnvKeys(readFileSync(`${root}src/config.ts`, 'utf8'));
const REQUIRED_APP_VARIABLES = ['DATABASE_URL', 'REDIS_URL', 'REDIS_PREFIX', 'ENCRYPTION_KEY'];
const composeCommand = findComposeCommand();

describe('docker-compose.yml', () => {
  it('defines postgres, redis, a one-shot migrate, api and worker', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['postgres', 'redis', 'migrate', 'api', 'worker']),
    );
    expect(services.migrate?.restart).toBe('no');
    expect(services.migrate?.command).toEqual(['control-plane', 'up']);
    expect(services.migrate?.entrypoint).toEqual(['node', 'dist/cli/migrate.js']);
    expect(services.migrate?.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' } });
  });

  it('gives postgres, redis and the api a healthcheck', () => {
    expect(healthcheckText('postgres')).toContain('pg_isready');
    expect(healthcheckText('redis')).toContain('redis-cli');
    expect(healthcheckText('api')).toContain('/readyz');
  });

  it('runs api, worker and migrate from one image', () => {
    const api = services.api;
    expect(api?.image).toEqual(expect.any(String));
    expect(api?.build).toBeDefined();
    for (const name of ['worker', 'migrate']) {
      expect(services[name]?.image, name).toBe(api?.image);
      expect(services[name]?.build, name).toEqual(api?.build);
    }
    expect(api?.command).toEqual(['api']);
    expect(services.worker?.command).toEqual(['worker']);
  });

  it.each(['api', 'worker'])('starts %s after healthy postgres and redis and a finished migrate', (name) => {
    expect(services[name]?.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    });
  });

  it.each(['api', 'worker', 'migrate'])('sets only variables src/config.ts knows on %s', (name) => {
    const environment = environmentOf(name);
    const unknown = Object.keys(environment).filter((key) => !configKeys.includes(key));
    expect(configKeys.length).toBeGreaterThan(5);
    expect(unknown).toEqual([]);
    for (const key of REQUIRED_APP_VARIABLES) {
      expect(String(environment[key] ?? ''), `${name} ${key}`).not.toBe('');
    }
  });

  it('requires ENCRYPTION_KEY from the environment instead of shipping one under production', () => {
    for (const name of ['api', 'worker', 'migrate']) {
      const environment = environmentOf(name);
      expect(environment.ENCRYPTION_KEY, name).toMatch(/^\$\{ENCRYPTION_KEY:\?[^}]+\}$/);
      expect(environment.ENCRYPTION_KEYS_PREVIOUS, name).toBe('${ENCRYPTION_KEYS_PREVIOUS:-}');
    }
  });

  it('points the app at the compose postgres and redis', () => {
    const environment = environmentOf('api');
    expect(environment.DATABASE_URL).toMatch(/^postgres(ql)?:\/\/[^/]*@postgres:5432\//);
    expect(environment.REDIS_URL).toMatch(/^redis:\/\/redis:6379/);
    expect(environment.NODE_ENV).toBe('production');
  });

  it('publishes the api on port 4000', () => {
    const ports = (services.api?.ports ?? []).map(String);
    expect(ports.some((port) => /(^|:)4000:4000$/.test(port) || /:-4000}:4000$/.test(port))).toBe(true);
  });

  // PostgreSQL runs with trust auth and Redis without a password: on every interface they would be
  // open to the whole network. Every published port is bound to the loopback interface.
  it.each(Object.keys(services))('binds every published port of %s to 127.0.0.1', (name) => {
    for (const port of (services[name]?.ports ?? []).map(String)) {
      expect(port, `${name} ${port}`).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it.skipIf(!composeCommand)('is accepted by docker compose config once ENCRYPTION_KEY is set', () => {
    const [command, ...args] = composeCommand ?? [];
    const config = (env: Record<string, string | undefined>) =>
      spawnSync(command!, [...args, '-f', composePath, 'config', '-q'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, ...env },
      });
    const result = config({ ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64') });
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.status).toBe(0);
    const withoutKey = config({ ENCRYPTION_KEY: '' });
    expect(withoutKey.status).not.toBe(0);
    expect(withoutKey.stderr).toContain('set ENCRYPTION_KEY');
  });
});

interface Service {
  image?: string;
  build?: unknown;
  command?: unknown;
  entrypoint?: unknown;
  restart?: string;
  ports?: unknown[];
  environment?: Record<string, unknown> | string[];
  depends_on?: unknown;
  healthcheck?: { test?: unknown; disable?: boolean };
}
interface Compose {
  services?: Record<string, Service>;
}

function healthcheckText(name: string): string {
  const test = services[name]?.healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : String(test ?? '');
}

function environmentOf(name: string): Record<string, unknown> {
  const environment = services[name]?.environment ?? {};
  if (!Array.isArray(environment)) return environment;
  return Object.fromEntries(
    environment.map((entry) => {
      const [key = '', ...value] = entry.split('=');
      return [key, value.join('=')];
    }),
  );
}

/** The keys of the `Env` zod object in src/config.ts, read as text so this test imports no src. */
function readEnvKeys(source: string): string[] {
  const body = /const Env = z\.object\(\{([\s\S]*?)\n\}\);/.exec(source)?.[1] ?? '';
  return [...body.matchAll(/^\s{2}([A-Z][A-Z0-9_]*):/gm)].map((match) => match[1]!);
}

function findComposeCommand(): string[] | null {
  for (const candidate of [['docker-compose'], ['docker', 'compose']]) {
    const [command, ...args] = candidate;
    const probe = spawnSync(command!, [...args, 'version'], { encoding: 'utf8', timeout: 10_000 });
    if (probe.status === 0) return candidate;
  }
  return null;
}
