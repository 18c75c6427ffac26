import { z } from 'zod';
import { createHash } from 'node:crypto';
import { ConfigError } from './errors.js';
import { TENANT_OBJECT_PREFIX, TENANT_OBJECT_PREFIX_PATTERN } from './tenants/naming.js';

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/control_plane';
// A fixed development key, so a fresh clone runs with zero configuration. Refused in production.
const DEVELOPMENT_ENCRYPTION_KEY = Buffer.alloc(32, 'tenant-control-plane-dev-key!!!!').toString('base64');

const postgresUrl = z.string().refine(isPostgresUrl, 'must be a postgres:// or postgresql:// URL');
const redisUrl = z.string().refine(isRedisUrl, 'must be a redis:// or rediss:// URL');
const flag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

const Env = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  DATABASE_URL: postgresUrl.default(DEFAULT_DATABASE_URL),
  /** Defaults to the DATABASE_URL server, database `tenants`. */
  TENANT_DATABASE_URL: postgresUrl.optional(),
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_:{}.-]{1,64}$/, 'must be 1-64 letters, digits or _ : { } . -')
    .default('cp'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  MIGRATIONS_DIR: z.string().min(1).default('migrations/tenant'),
  CONTROL_PLANE_MIGRATIONS_DIR: z.string().min(1).default('migrations/control_plane'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
  /** Targets of one run queued or running at once when a run does not say. */
  DEFAULT_RUN_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
  ENCRYPTION_KEY: z.string().optional(),
  BOOTSTRAP_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  AUTH_DISABLED: flag.default(false),
  /** `SET LOCAL lock_timeout` for tenant DDL, in milliseconds. */
  LOCK_TIMEOUT_MS: z.coerce.number().int().min(1).default(5000),
  /** Connections per tenant database server held by one process. */
  TENANT_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  /** How often a worker looks for targets the queue lost, in milliseconds. */
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1000).default(30000),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /** Prefix of new tenant schemas and databases; give each deployment sharing a tenant server its own. */
  TENANT_OBJECT_PREFIX: z
    .string()
    .regex(
      TENANT_OBJECT_PREFIX_PATTERN,
      'must be 1-13 lowercase letters, digits or _, starting with a letter',
    )
    .refine((prefix) => !prefix.startsWith('pg_'), 'must not start with pg_ (reserved by PostgreSQL)')
    .default(TENANT_OBJECT_PREFIX),
});

export interface Config {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly databaseUrl: string;
  readonly tenantDatabaseUrl: string;
  readonly redisUrl: string;
  readonly redisPrefix: string;
  readonly port: number;
  readonly migrationsDir: string;
  readonly controlPlaneMigrationsDir: string;
  readonly workerConcurrency: number;
  readonly defaultRunConcurrency: number;
  /** 32 bytes. */
  readonly encryptionKey: Buffer;
  /** Identifies the key inside each ciphertext, so keys can be rotated. */
  readonly encryptionKeyId: string;
  readonly usingDevelopmentKey: boolean;
  readonly bootstrapAdminToken: string | null;
  readonly authDisabled: boolean;
  readonly lockTimeoutMs: number;
  readonly tenantPoolSize: number;
  readonly reconcileIntervalMs: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  readonly tenantObjectPrefix: string;
}

/** Parses the environment into a frozen Config; throws ConfigError with one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = Env.safeParse(withoutEmpty(env));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = issue?.path.join('.') ?? 'environment';
    throw new ConfigError(`Invalid ${variable}: ${issue?.message ?? 'invalid value'}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  if (production && !e.ENCRYPTION_KEY) {
    throw new ConfigError('Invalid ENCRYPTION_KEY: required when NODE_ENV=production (32 bytes, base64)');
  }
  const encryptionKey = decodeKey(e.ENCRYPTION_KEY ?? DEVELOPMENT_ENCRYPTION_KEY);
  return Object.freeze({
    nodeEnv: e.NODE_ENV,
    databaseUrl: e.DATABASE_URL,
    tenantDatabaseUrl: e.TENANT_DATABASE_URL ?? withDatabase(e.DATABASE_URL, 'tenants'),
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    port: e.PORT,
    migrationsDir: e.MIGRATIONS_DIR,
    controlPlaneMigrationsDir: e.CONTROL_PLANE_MIGRATIONS_DIR,
    workerConcurrency: e.WORKER_CONCURRENCY,
    defaultRunConcurrency: e.DEFAULT_RUN_CONCURRENCY,
    encryptionKey,
    encryptionKeyId: keyId(encryptionKey),
    usingDevelopmentKey: !e.ENCRYPTION_KEY,
    bootstrapAdminToken: e.BOOTSTRAP_ADMIN_TOKEN ?? null,
    // Never honoured in production: a stray variable must not open the API.
    authDisabled: e.AUTH_DISABLED && !production,
    lockTimeoutMs: e.LOCK_TIMEOUT_MS,
    tenantPoolSize: e.TENANT_POOL_SIZE,
    reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
    logLevel: e.LOG_LEVEL,
    tenantObjectPrefix: e.TENANT_OBJECT_PREFIX,
  });
}

/** Returns `url` with its database (path) replaced by `database`. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** The database name of a postgres URL. */
export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

function decodeKey(value: string): Buffer {
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(value) ? Buffer.from(value, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) {
    throw new ConfigError(
      `Invalid ENCRYPTION_KEY: must be 32 bytes encoded as base64 (got ${key.length} bytes)`,
    );
  }
  return key;
}

function keyId(key: Buffer): string {
  // A short, non-secret fingerprint: the key itself never leaves this process.
  return createHashHex(key).slice(0, 8);
}

function createHashHex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function isPostgresUrl(value: string): boolean {
  return parsesAs(value, ['postgres:', 'postgresql:']);
}

function isRedisUrl(value: string): boolean {
  return parsesAs(value, ['redis:', 'rediss:']);
}

function parsesAs(value: string, protocols: string[]): boolean {
  try {
    const url = new URL(value);
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}

function withoutEmpty(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && value !== '') out[key] = value;
  return out;
}
