/**
 * What a deployment needs for backups (issue 15): settings with safe defaults, client tools of
 * the compose file's PostgreSQL major in the image, and BACKUP_DIR on a volume the api and the
 * workers share.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../../src/config.js';
import { ConfigError } from '../../../src/errors.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8');
const compose = parse(readFileSync(`${root}docker-compose.yml`, 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; environment?: Record<string, string>; volumes?: string[] }>;
  volumes: Record<string, unknown>;
};

describe('backup settings', () => {
  it('default to ./backups, 30 days, the 3 newest per tenant, hourly pruning and no extra bin dir', () => {
    expect(loadConfig({})).toMatchObject({
      backupDir: './backups',
      backupRetentionDays: 30,
      backupKeepLast: 3,
      backupPruneIntervalMs: 3_600_000,
      pgClientBinDir: null,
    });
  });

  it('refuse negative or non-numeric values with one line naming the variable', () => {
    expect(() => loadConfig({ BACKUP_RETENTION_DAYS: '-1' })).toThrow(ConfigError);
    expect(() => loadConfig({ BACKUP_KEEP_LAST: 'many' })).toThrow(/BACKUP_KEEP_LAST/);
    expect(() => loadConfig({ BACKUP_PRUNE_INTERVAL_MS: '10' })).toThrow(/BACKUP_PRUNE_INTERVAL_MS/);
  });
});

describe('backups in the image and the compose file', () => {
  it("installs pg_dump of the compose file's PostgreSQL major in the runtime image", () => {
    const major = /^postgres:(\d+)/.exec(compose.services.postgres?.image ?? '')?.[1];
    expect(major).toBeDefined();
    expect(dockerfile).toContain(`ARG PG_CLIENT_MAJOR=${major}`);
    expect(dockerfile).toMatch(/apt-get install[^\n]*"postgresql-client-\$\{PG_CLIENT_MAJOR\}"/);
  });

  it.each(['api', 'worker'])('gives %s BACKUP_DIR on the shared backups volume', (name) => {
    const service = compose.services[name]!;
    const dir = service.environment?.BACKUP_DIR;
    expect(dir).toMatch(/^\//);
    expect(service.volumes).toContain(`backups:${dir}`);
    expect(compose.volumes).toHaveProperty('backups');
  });
});
