import { z } from 'zod';
import { createHash } from 'node:crypto';
import { ConfigError } from './errors.js';
import { parseRedisUrl } from './redis/redis-url.js';

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/control_plane';
// A fixed development key, so a fresh clone runs with zero configuration. Refused in production.
const DEVELOPMENT_ENCRYPTION_KEY = Buffer.alloc(32, 'tenant-control-plane-dev-key!!!!').toString('base64');
// Keys anyone can read in this repository: the development key and the one docker-compose.yml
// used to default to. Production refuses them as ENCRYPTION_KEY (they stay allowed in
// ENCRYPTION_KEYS_PREVIOUS, which is how a deployment moves its secrets off them).
const PUBLISHED_ENCRYPTION_KEYS = [
  DEVELOPMENT_ENCRYPTION_KEY,
  'ZG9ja2VyLWNvbXBvc2UtbG9jYWwtb25seS1rZXkhISE=',
];

/**
 * Default prefix of tenant schemas and databases (TENANT_OBJECT_PREFIX); every name had it before
 * the prefix was configurable, so existing rows keep matching `isTenantObjectName`.
 */
export const TENANT_OBJECT_PREFIX = 'tenant_';
/** A prefix: a lowercase letter, then lowercase letters, digits or `_`; at most 13 characters, so prefix + name fits in 63. */
export const TENANT_OBJECT_PREFIX_PATTERN = /^[a-z][a-z0-9_]{0,12}$/;

/** A ledger table name (LEDGER_TABLE): a plain, unquoted PostgreSQL identifier, spliced into SQL. */
export const LEDGER_TABLE_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

const postgresUrl = z.string().refine(isPostgresUrl, 'must be a postgres:// or postgresql:// URL');
const redisUrl = z
  .string()
  .refine(
    (value) => parseRedisUrl(value) !== null,
    'must be a redis:// or rediss:// URL, or redis+cluster://host:port[,host:port...] for a Redis Cluster',
  );
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
  /** Interface to listen on; default every interface, or 127.0.0.1 while AUTH_DISABLED. */
  HOST: z.string().min(1).optional(),
  /** Origins (scheme://host[:port], comma-separated) that browsers may call the API from. */
  CORS_ORIGINS: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean),
    )
    .refine(
      (origins) => origins.every(isOrigin),
      'must be comma-separated origins such as https://console.example.com',
    )
    .default([]),
  MIGRATIONS_DIR: z.string().min(1).default('migrations/tenant'),
  CONTROL_PLANE_MIGRATIONS_DIR: z.string().min(1).default('migrations/control_plane'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
  /** Targets of one run queued or running at once when a run does not say. */
  DEFAULT_RUN_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
  ENCRYPTION_KEY: z.string().optional(),
  /** Comma-separated older keys (base64, 32 bytes each): they open ciphertexts, never seal. */
  ENCRYPTION_KEYS_PREVIOUS: z.string().optional(),
  BOOTSTRAP_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  AUTH_DISABLED: flag.default(false),
  /** `SET LOCAL lock_timeout` for tenant DDL, in milliseconds. */
  LOCK_TIMEOUT_MS: z.coerce.number().int().min(1).default(5000),
  /** Connections per tenant database server held by one process. */
  TENANT_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  /** How often a worker looks for targets the queue lost, in milliseconds. */
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1000).default(30000),
  /**
   * Record each tenant's fingerprint after every successful migrate or rollback target: the read
   * rides in the move's own round trip and the record in its finish (see README, B1 bench note).
   */
  FINGERPRINT_AFTER_TARGET: flag.default(true),
  /** Tries per target, transient failures included (backoff 1 s, 2 s, 4 s, ...): 8 wait out about 2 minutes. */
  TARGET_JOB_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(8),
  /**
   * Targets of one run a job works one after the other, each finish claiming the next in the same
   * control-plane transaction: the queue and the claim's own transaction are paid once per batch.
   */
  TARGET_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(16),
  /** How long a worker's hold on a job lasts without renewal: a dead worker's jobs move on after about this. */
  WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /** Largest WebSocket frame accepted, in bytes; a larger one closes the socket (1009) unread. */
  WS_MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(25 * 1024 * 1024)
    .default(1024 * 1024),
  /** Subscriptions open at once on one WebSocket. */
  SUBSCRIPTIONS_PER_SOCKET: z.coerce.number().int().min(1).max(100_000).default(100),
  /** Subscriptions (SSE and WebSocket) open at once with one token, in one API process. */
  SUBSCRIPTIONS_PER_TOKEN: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  /** Subscriptions (SSE and WebSocket) open at once in one API process. */
  SUBSCRIPTIONS_PER_PROCESS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /** How often each API process re-checks the tokens of its open streams, in milliseconds. */
  STREAM_RECHECK_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
  /** Most aliased fields in one GraphQL operation (`__typename` not counted). */
  GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(1).max(1000).default(15),
  /** Deepest selection in one GraphQL operation (introspection not counted). */
  GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(1).max(100).default(10),
  /** Most lexical tokens in one GraphQL document. */
  GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(100).max(100_000).default(1000),
  /** Most directives in one GraphQL operation. */
  GRAPHQL_MAX_DIRECTIVES: z.coerce.number().int().min(1).max(1000).default(50),
  /** Highest cost of one GraphQL operation; a read of a tenant's own database costs 25 per tenant. */
  GRAPHQL_MAX_COST: z.coerce.number().int().min(1).max(10_000_000).default(5000),
  /** `statement_timeout` of the API's reads of tenant databases (ledgers), in milliseconds. */
  TENANT_READ_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(3000),
  /** A token that may read /metrics only, for Prometheus scrapers; any API token may too. */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Days an audit row is kept; 0 keeps every row forever. */
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36500).default(90),
  /** How often the API prunes audit rows older than AUDIT_RETENTION_DAYS, in milliseconds. */
  AUDIT_PRUNE_INTERVAL_MS: z.coerce.number().int().min(1000).default(3_600_000),
  /**
   * How often each process checks the control plane's tables for dead rows and vacuums those past
   * autovacuum's rule (db/control-plane-upkeep.ts), in milliseconds; 0: never (autovacuum only).
   */
  CONTROL_PLANE_VACUUM_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(86_400_000)
    .refine((ms) => ms === 0 || ms >= 1000, 'must be 0 (off) or at least 1000')
    .default(60_000),
  /**
   * The `default` server's budget of targets migrating at once when it is first registered; wide,
   * so a deployment that had one server is not slowed by the upgrade (change it with updateDatabaseServer).
   */
  DEFAULT_SERVER_BUDGET: z.coerce.number().int().min(1).max(1000).default(32),
  /** Prefix of new tenant schemas and databases; give each deployment sharing a tenant server its own. */
  TENANT_OBJECT_PREFIX: z
    .string()
    .regex(
      TENANT_OBJECT_PREFIX_PATTERN,
      'must be 1-13 lowercase letters, digits or _, starting with a letter',
    )
    .refine((prefix) => !prefix.startsWith('pg_'), 'must not start with pg_ (reserved by PostgreSQL)')
    .default(TENANT_OBJECT_PREFIX),
  /**
   * The ledger table's name inside every tenant schema: a name no tenant catalog uses. Changing it
   * on a live estate needs each ledger renamed first (see the README); only the legacy name
   * `schema_migrations` is renamed by the engine.
   */
  LEDGER_TABLE: z
    .string()
    .regex(LEDGER_TABLE_PATTERN, 'must be 1-63 lowercase letters, digits or _, starting with a letter or _')
    .refine((name) => !name.startsWith('pg_'), 'must not start with pg_ (reserved by PostgreSQL)')
    .refine(
      // The engine's LEGACY_LEDGER_TABLE (migrations/ledger.ts).
      (name) => name !== 'schema_migrations',
      "must not be schema_migrations, golang-migrate's own table (public catalogs alter and drop it)",
    )
    // The engine's LEDGER_TABLE (migrations/ledger.ts).
    .default('control_plane_ledger'),
  /** Directory of tenant backup files (pg_dump custom format); created on first backup. */
  BACKUP_DIR: z.string().min(1).default('./backups'),
  /** Days a backup file is kept (beyond the BACKUP_KEEP_LAST newest of each tenant); 0 keeps every file. */
  BACKUP_RETENTION_DAYS: z.coerce.number().int().min(0).max(36500).default(30),
  /** Newest backups of each tenant kept whatever their age. */
  BACKUP_KEEP_LAST: z.coerce.number().int().min(0).max(1000).default(3),
  /** How often a worker removes expired backup files, in milliseconds. */
  BACKUP_PRUNE_INTERVAL_MS: z.coerce.number().int().min(1000).default(3_600_000),
  /** A directory with pg_dump, pg_restore and psql, tried after /usr/lib/postgresql/<major>/bin and before PATH. */
  PG_CLIENT_BIN_DIR: z.string().min(1).optional(),
  /** `auto`: a new tenant is made from the catalog's template (see README, Provisioning from a template); `off`: always replay. */
  PROVISION_TEMPLATE: z.enum(['auto', 'off']).default('auto'),
  /**
   * Catalogs with at least this many files provision from a template when PROVISION_TEMPLATE=auto.
   * Default 1, every catalog: a spare schema's rename is faster than replaying even five files.
   */
  PROVISION_TEMPLATE_MIN_FILES: z.coerce.number().int().min(1).max(100_000).default(1),
  /** Spare schemas made ahead from the template per catalog and tenants database; a new tenant renames one. 0: none. */
  PROVISION_SPARE_SCHEMAS: z.coerce.number().int().min(0).max(100).default(2),
});

/** Limits every GraphQL operation is checked against before it runs. */
export interface GraphqlLimits {
  readonly maxAliases: number;
  readonly maxDepth: number;
  readonly maxTokens: number;
  readonly maxDirectives: number;
  readonly maxCost: number;
}

export interface Config {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly databaseUrl: string;
  readonly tenantDatabaseUrl: string;
  readonly redisUrl: string;
  readonly redisPrefix: string;
  readonly port: number;
  /** Interface the HTTP server binds. */
  readonly host: string;
  /** Browser origins granted CORS; empty: none. */
  readonly corsOrigins: readonly string[];
  readonly migrationsDir: string;
  readonly controlPlaneMigrationsDir: string;
  readonly workerConcurrency: number;
  readonly defaultRunConcurrency: number;
  /** 32 bytes. */
  readonly encryptionKey: Buffer;
  /** Identifies the key inside each ciphertext, so keys can be rotated. */
  readonly encryptionKeyId: string;
  readonly usingDevelopmentKey: boolean;
  /** Older keys, for opening what they sealed until `secrets reseal` has run. */
  readonly previousEncryptionKeys: readonly { readonly id: string; readonly key: Buffer }[];
  readonly bootstrapAdminToken: string | null;
  readonly authDisabled: boolean;
  readonly lockTimeoutMs: number;
  readonly tenantPoolSize: number;
  readonly reconcileIntervalMs: number;
  readonly workerLockDurationMs: number;
  readonly targetJobAttempts: number;
  readonly targetBatchSize: number;
  readonly fingerprintAfterTarget: boolean;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  readonly wsMaxPayloadBytes: number;
  readonly subscriptionsPerSocket: number;
  readonly subscriptionsPerToken: number;
  readonly subscriptionsPerProcess: number;
  readonly streamRecheckIntervalMs: number;
  readonly graphqlLimits: GraphqlLimits;
  readonly tenantReadTimeoutMs: number;
  readonly metricsToken: string | null;
  readonly auditRetentionDays: number;
  readonly auditPruneIntervalMs: number;
  /** CONTROL_PLANE_VACUUM_INTERVAL_MS; 0: the service never vacuums its tables itself. */
  readonly controlPlaneVacuumIntervalMs: number;
  readonly tenantObjectPrefix: string;
  /** The ledger table's name in every tenant schema (LEDGER_TABLE). */
  readonly ledgerTable: string;
  /** Budget of the `default` server (TENANT_DATABASE_URL's) when the start registers it. */
  readonly defaultServerBudget: number;
  readonly backupDir: string;
  readonly backupRetentionDays: number;
  readonly backupKeepLast: number;
  readonly backupPruneIntervalMs: number;
  readonly pgClientBinDir: string | null;
  readonly provisionTemplate: 'auto' | 'off';
  readonly provisionTemplateMinFiles: number;
  readonly provisionSpareSchemas: number;
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
  // An open ADMIN API must be an explicit, local-only choice: refused in production, loopback elsewhere.
  if (production && e.AUTH_DISABLED) {
    throw new ConfigError('Invalid AUTH_DISABLED: refused when NODE_ENV=production');
  }
  if (e.AUTH_DISABLED && e.HOST !== undefined && !isLoopback(e.HOST)) {
    throw new ConfigError(
      'Invalid HOST: must be a loopback address (127.0.0.1 or ::1) while AUTH_DISABLED=true',
    );
  }
  if (production && e.ENCRYPTION_KEY !== undefined && PUBLISHED_ENCRYPTION_KEYS.includes(e.ENCRYPTION_KEY)) {
    throw new ConfigError(
      'Invalid ENCRYPTION_KEY: a published development key is refused when NODE_ENV=production; set your own (openssl rand -base64 32) and move the old one to ENCRYPTION_KEYS_PREVIOUS',
    );
  }
  const encryptionKey = decodeKey(e.ENCRYPTION_KEY ?? DEVELOPMENT_ENCRYPTION_KEY, 'ENCRYPTION_KEY:');
  const encryptionKeyId = keyId(encryptionKey);
  const previousEncryptionKeys = parsePreviousKeys(e.ENCRYPTION_KEYS_PREVIOUS ?? '').filter(
    (previous) => previous.id !== encryptionKeyId,
  );
  return Object.freeze({
    nodeEnv: e.NODE_ENV,
    databaseUrl: e.DATABASE_URL,
    tenantDatabaseUrl: e.TENANT_DATABASE_URL ?? withDatabase(e.DATABASE_URL, 'tenants'),
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    port: e.PORT,
    host: e.HOST ?? (e.AUTH_DISABLED ? '127.0.0.1' : '::'),
    corsOrigins: Object.freeze(e.CORS_ORIGINS),
    migrationsDir: e.MIGRATIONS_DIR,
    controlPlaneMigrationsDir: e.CONTROL_PLANE_MIGRATIONS_DIR,
    workerConcurrency: e.WORKER_CONCURRENCY,
    defaultRunConcurrency: e.DEFAULT_RUN_CONCURRENCY,
    encryptionKey,
    encryptionKeyId,
    usingDevelopmentKey: !e.ENCRYPTION_KEY,
    previousEncryptionKeys: Object.freeze(previousEncryptionKeys),
    bootstrapAdminToken: e.BOOTSTRAP_ADMIN_TOKEN ?? null,
    authDisabled: e.AUTH_DISABLED,
    lockTimeoutMs: e.LOCK_TIMEOUT_MS,
    tenantPoolSize: e.TENANT_POOL_SIZE,
    reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
    workerLockDurationMs: e.WORKER_LOCK_DURATION_MS,
    targetJobAttempts: e.TARGET_JOB_ATTEMPTS,
    targetBatchSize: e.TARGET_BATCH_SIZE,
    fingerprintAfterTarget: e.FINGERPRINT_AFTER_TARGET,
    logLevel: e.LOG_LEVEL,
    wsMaxPayloadBytes: e.WS_MAX_PAYLOAD_BYTES,
    subscriptionsPerSocket: e.SUBSCRIPTIONS_PER_SOCKET,
    subscriptionsPerToken: e.SUBSCRIPTIONS_PER_TOKEN,
    subscriptionsPerProcess: e.SUBSCRIPTIONS_PER_PROCESS,
    streamRecheckIntervalMs: e.STREAM_RECHECK_INTERVAL_MS,
    graphqlLimits: Object.freeze({
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxCost: e.GRAPHQL_MAX_COST,
    }),
    tenantReadTimeoutMs: e.TENANT_READ_TIMEOUT_MS,
    metricsToken: e.METRICS_TOKEN ?? null,
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    auditPruneIntervalMs: e.AUDIT_PRUNE_INTERVAL_MS,
    controlPlaneVacuumIntervalMs: e.CONTROL_PLANE_VACUUM_INTERVAL_MS,
    tenantObjectPrefix: e.TENANT_OBJECT_PREFIX,
    ledgerTable: e.LEDGER_TABLE,
    defaultServerBudget: e.DEFAULT_SERVER_BUDGET,
    backupDir: e.BACKUP_DIR,
    backupRetentionDays: e.BACKUP_RETENTION_DAYS,
    backupKeepLast: e.BACKUP_KEEP_LAST,
    backupPruneIntervalMs: e.BACKUP_PRUNE_INTERVAL_MS,
    pgClientBinDir: e.PG_CLIENT_BIN_DIR ?? null,
    provisionTemplate: e.PROVISION_TEMPLATE,
    provisionTemplateMinFiles: e.PROVISION_TEMPLATE_MIN_FILES,
    provisionSpareSchemas: e.PROVISION_SPARE_SCHEMAS,
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

// `subject` names what is bad in the one-line error, e.g. `ENCRYPTION_KEY:`.
function decodeKey(value: string, subject: string): Buffer {
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(value) ? Buffer.from(value, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) {
    throw new ConfigError(`Invalid ${subject} must be 32 bytes encoded as base64 (got ${key.length} bytes)`);
  }
  return key;
}

function parsePreviousKeys(value: string): { id: string; key: Buffer }[] {
  const keys = new Map<string, Buffer>();
  value
    .split(',')
    .map((entry) => entry.trim())
    .forEach((entry, index) => {
      if (entry === '') return;
      const key = decodeKey(entry, `ENCRYPTION_KEYS_PREVIOUS: entry ${index + 1}`);
      keys.set(keyId(key), key);
    });
  return [...keys].map(([id, key]) => ({ id, key }));
}

function keyId(key: Buffer): string {
  // A short, non-secret fingerprint: the key itself never leaves this process.
  return createHashHex(key).slice(0, 8);
}

function createHashHex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function isLoopback(host: string): boolean {
  return host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return ['http:', 'https:'].includes(url.protocol) && url.origin === value;
  } catch {
    return false;
  }
}

function isPostgresUrl(value: string): boolean {
  return parsesAs(value, ['postgres:', 'postgresql:']);
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
