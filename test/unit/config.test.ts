import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const validKey = Buffer.alloc(32, 7).toString('base64');

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('runs with zero configuration on a developer machine', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      nodeEnv: 'development',
      databaseUrl: 'postgresql://postgres@127.0.0.1:5432/control_plane',
      tenantDatabaseUrl: 'postgresql://postgres@127.0.0.1:5432/tenants',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'cp',
      port: 4000,
      migrationsDir: 'migrations/tenant',
      workerConcurrency: 4,
      lockTimeoutMs: 5000,
      logLevel: 'info',
      usingDevelopmentKey: true,
      authDisabled: false,
      bootstrapAdminToken: null,
    });
    expect(config.encryptionKey).toHaveLength(32);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('derives the tenant database from DATABASE_URL and honours overrides', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@db:6543/cp',
      PORT: '8080',
      ENCRYPTION_KEY: validKey,
    });
    expect(config.tenantDatabaseUrl).toBe('postgres://u@db:6543/tenants');
    expect(config.port).toBe(8080);
    expect(config.usingDevelopmentKey).toBe(false);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', ENCRYPTION_KEY: '' }).port).toBe(4000);
  });

  it('refuses AUTH_DISABLED in production instead of ignoring it', () => {
    const error = configError({ NODE_ENV: 'production', ENCRYPTION_KEY: validKey, AUTH_DISABLED: 'true' });
    expect(error.message).toContain('AUTH_DISABLED');
  });

  it('listens on every interface by default and on loopback only while auth is disabled', () => {
    expect(loadConfig({}).host).toBe('::');
    expect(loadConfig({ HOST: '10.0.0.5' }).host).toBe('10.0.0.5');
    expect(loadConfig({ AUTH_DISABLED: 'true' }).host).toBe('127.0.0.1');
    expect(loadConfig({ AUTH_DISABLED: 'true', HOST: '::1' }).host).toBe('::1');
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
      expect(configError({ AUTH_DISABLED: 'true', HOST: host }).message).toContain('HOST');
    }
  });

  it('closes CORS unless CORS_ORIGINS lists origins', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(
      loadConfig({ CORS_ORIGINS: 'https://console.example.com, http://localhost:5173' }).corsOrigins,
    ).toEqual(['https://console.example.com', 'http://localhost:5173']);
    for (const bad of ['*', 'console.example.com', 'https://console.example.com/path', 'ftp://x.example']) {
      expect(configError({ CORS_ORIGINS: bad }).message).toContain('CORS_ORIGINS');
    }
  });

  it.each([
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://localhost/db' }],
    ['TENANT_DATABASE_URL', { TENANT_DATABASE_URL: 'http://x' }],
    ['ENCRYPTION_KEY', { ENCRYPTION_KEY: Buffer.alloc(16).toString('base64') }],
    ['ENCRYPTION_KEY', { ENCRYPTION_KEY: 'not base64!' }],
    ['PORT', { PORT: 'eighty' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }],
    ['ENCRYPTION_KEY', { NODE_ENV: 'production' }],
  ])('names %s in one line when it is bad', (variable, env) => {
    const error = configError(env);
    expect(error.code).toBe('CONFIG');
    expect(error.message).toContain(variable);
    expect(error.message).not.toContain('\n');
  });

  it('refuses in production the development key and the key compose used to ship', () => {
    const developmentKey = Buffer.alloc(32, 'tenant-control-plane-dev-key!!!!').toString('base64');
    const composeKey = 'ZG9ja2VyLWNvbXBvc2UtbG9jYWwtb25seS1rZXkhISE=';
    for (const key of [developmentKey, composeKey]) {
      const error = configError({ NODE_ENV: 'production', ENCRYPTION_KEY: key });
      expect(error.message).toMatch(/^Invalid ENCRYPTION_KEY: .*published/);
      expect(error.message).not.toContain(key);
    }
    // Outside production they stay usable, and a published key may be a previous key anywhere.
    expect(loadConfig({ ENCRYPTION_KEY: composeKey }).usingDevelopmentKey).toBe(false);
    expect(
      loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEY: validKey, ENCRYPTION_KEYS_PREVIOUS: composeKey })
        .previousEncryptionKeys,
    ).toHaveLength(1);
  });

  it('loads ENCRYPTION_KEYS_PREVIOUS for decrypting, each with its key id', () => {
    const older = Buffer.alloc(32, 8).toString('base64');
    const oldest = Buffer.alloc(32, 9).toString('base64');
    const config = loadConfig({
      ENCRYPTION_KEY: validKey,
      ENCRYPTION_KEYS_PREVIOUS: ` ${older}, ${oldest} ,`,
    });
    expect(config.previousEncryptionKeys.map((k) => k.key.toString('base64'))).toEqual([older, oldest]);
    expect(config.previousEncryptionKeys.map((k) => k.id)).toEqual([
      expect.stringMatching(/^[0-9a-f]{8}$/),
      expect.stringMatching(/^[0-9a-f]{8}$/),
    ]);
    expect(config.previousEncryptionKeys[0]!.id).not.toBe(config.encryptionKeyId);
    // The current key repeated among the previous ones is harmless and dropped.
    expect(
      loadConfig({ ENCRYPTION_KEY: validKey, ENCRYPTION_KEYS_PREVIOUS: validKey }).previousEncryptionKeys,
    ).toEqual([]);
    expect(loadConfig({}).previousEncryptionKeys).toEqual([]);
  });

  it('names the bad entry of ENCRYPTION_KEYS_PREVIOUS by position, never its value', () => {
    const short = Buffer.alloc(16, 3).toString('base64');
    const error = configError({ ENCRYPTION_KEYS_PREVIOUS: `${validKey},${short}` });
    expect(error.message).toBe(
      'Invalid ENCRYPTION_KEYS_PREVIOUS: entry 2 must be 32 bytes encoded as base64 (got 16 bytes)',
    );
    expect(error.message).not.toContain(short);
  });

  it('keeps the key out of the error message', () => {
    const badKey = Buffer.alloc(31, 1).toString('base64');
    expect(configError({ ENCRYPTION_KEY: badKey }).message).not.toContain(badKey);
  });

  it('checks the control-plane tables for a VACUUM every minute unless CONTROL_PLANE_VACUUM_INTERVAL_MS says (0: never)', () => {
    expect(loadConfig({}).controlPlaneVacuumIntervalMs).toBe(60_000);
    expect(loadConfig({ CONTROL_PLANE_VACUUM_INTERVAL_MS: '0' }).controlPlaneVacuumIntervalMs).toBe(0);
    expect(configError({ CONTROL_PLANE_VACUUM_INTERVAL_MS: '500' }).message).toContain(
      'CONTROL_PLANE_VACUUM_INTERVAL_MS',
    );
  });

  it('gives the default server a wide migration budget unless DEFAULT_SERVER_BUDGET says', () => {
    expect(loadConfig({}).defaultServerBudget).toBe(32);
    expect(loadConfig({ DEFAULT_SERVER_BUDGET: '3' }).defaultServerBudget).toBe(3);
    expect(configError({ DEFAULT_SERVER_BUDGET: '0' }).message).toContain('DEFAULT_SERVER_BUDGET');
  });

  it('provisions every catalog from a template unless PROVISION_TEMPLATE=off or PROVISION_TEMPLATE_MIN_FILES says', () => {
    expect(loadConfig({})).toMatchObject({
      provisionTemplate: 'auto',
      provisionTemplateMinFiles: 1,
      provisionSpareSchemas: 2,
    });
    expect(loadConfig({ PROVISION_SPARE_SCHEMAS: '0' }).provisionSpareSchemas).toBe(0);
    expect(configError({ PROVISION_SPARE_SCHEMAS: '-1' }).message).toContain('PROVISION_SPARE_SCHEMAS');
    expect(loadConfig({ PROVISION_TEMPLATE: 'off', PROVISION_TEMPLATE_MIN_FILES: '5' })).toMatchObject({
      provisionTemplate: 'off',
      provisionTemplateMinFiles: 5,
    });
    expect(configError({ PROVISION_TEMPLATE: 'always' }).message).toContain('PROVISION_TEMPLATE');
    expect(configError({ PROVISION_TEMPLATE_MIN_FILES: '0' }).message).toContain(
      'PROVISION_TEMPLATE_MIN_FILES',
    );
  });

  it('names the ledger table control_plane_ledger unless LEDGER_TABLE names a plain identifier', () => {
    expect(loadConfig({}).ledgerTable).toBe('control_plane_ledger');
    expect(loadConfig({ LEDGER_TABLE: 'cp_ledger_2' }).ledgerTable).toBe('cp_ledger_2');
    for (const bad of [
      'Ledger',
      'my-ledger',
      'x; DROP TABLE y',
      '1ledger',
      'pg_ledger',
      'schema_migrations',
      'a'.repeat(64),
    ]) {
      expect(configError({ LEDGER_TABLE: bad }).message, bad).toContain('LEDGER_TABLE');
    }
  });
});
