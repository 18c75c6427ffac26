/**
 * The whole app (API + embedded worker) for one test file: its own control-plane DB clone, its
 * own Redis prefix, a captured logger, and helpers to call GraphQL through `yoga.fetch`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { RedisClient } from '../../../src/redis/connections.js';
import { afterAll, beforeAll } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import { loadConfig, type Config } from '../../../src/config.js';
import { quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { createLogger } from '../../../src/logger.js';
import { queuePrefixOf } from '../../../src/queue/target-queue.js';
import { createRedisConnection, deleteKeys } from '../../../src/redis/connections.js';
import { useTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { testServerUrl } from '../../helpers/template.js';

export const BOOTSTRAP_TOKEN = `bootstrap-${randomBytes(16).toString('hex')}`;

export interface GraphqlResponse<T = Record<string, unknown>> {
  readonly data?: T | null;
  readonly errors?: readonly {
    message: string;
    path?: readonly string[];
    extensions?: Record<string, unknown>;
  }[];
}

export interface ApiHarness {
  readonly database: TestDatabase;
  readonly app: App;
  readonly config: Config;
  /** Every log line the app wrote, raw. */
  readonly logLines: string[];
  /** Every raw response body this harness received. */
  readonly responseBodies: string[];
  /** A unique tenant name for this file (`<base>-<random>`), dropped in afterAll if it got a database. */
  tenantName(base: string): string;
  /** POSTs a GraphQL operation; `token` null sends no Authorization header. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are checked by shape in each test
  gql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string | null,
  ): Promise<GraphqlResponse<T>>;
  /** Creates an API token of `role` through the API and returns its value. */
  createToken(role: 'VIEWER' | 'OPERATOR' | 'ADMIN', name?: string): Promise<string>;
}

/** Registers the hooks that start the app before the file and close and clean up after it. */
export function useApiHarness(overrides: Record<string, string> = {}): ApiHarness {
  const database = useTestDatabase({ controlPlane: true });
  const prefix = `t-${randomUUID()}`;
  const logLines: string[] = [];
  const responseBodies: string[] = [];
  const suffix = randomBytes(3).toString('hex');
  const usedNames: string[] = [];
  let tokensCreated = 0;
  let app: App | undefined;
  let config: Config | undefined;
  let redis: RedisClient | undefined;

  beforeAll(async () => {
    config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      TENANT_DATABASE_URL: database.url,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_PREFIX: prefix,
      BOOTSTRAP_ADMIN_TOKEN: BOOTSTRAP_TOKEN,
      WORKER_CONCURRENCY: '4',
      RECONCILE_INTERVAL_MS: '1000',
      ...overrides,
    });
    const logger = createLogger('debug', {}, (line) => logLines.push(line));
    app = await createApp(config, { roles: { api: true, worker: true }, logger });
    redis = createRedisConnection(config.redisUrl, 'test-cleanup');
  });

  afterAll(async () => {
    await app?.close();
    if (redis) {
      for (const pattern of [`${queuePrefixOf(prefix)}*`, `${prefix}*`]) await deleteKeys(redis, pattern);
      await redis.quit();
    }
    // DATABASE-isolated tenants got databases of their own on the server.
    await withConnection(testServerUrl(), async (client) => {
      for (const name of usedNames) {
        await client.query(
          `DROP DATABASE IF EXISTS ${quoteDatabase(`tenant_${name.replace(/-/g, '_')}`)} WITH (FORCE)`,
        );
      }
    });
  });

  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the API harness is ready from beforeAll on');
    return value;
  };

  async function gql<T>(
    query: string,
    variables: Record<string, unknown> = {},
    token: string | null = BOOTSTRAP_TOKEN,
  ) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const response = await ready(ready(app).yoga).fetch('http://localhost/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
    });
    const text = await response.text();
    responseBodies.push(text);
    return JSON.parse(text) as GraphqlResponse<T>;
  }

  return {
    database,
    get app() {
      return ready(app);
    },
    get config() {
      return ready(config);
    },
    logLines,
    responseBodies,
    tenantName(base: string) {
      const name = `${base}-${suffix}`;
      usedNames.push(name);
      return name;
    },
    gql,
    // Token names are unique: the default name carries a counter.
    async createToken(role, name = `${role.toLowerCase()}-token-${++tokensCreated}`) {
      const result = await gql<{ createApiToken: { token?: string } }>(
        `mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) { ... on CreateApiTokenSuccess { token } } }`,
        { input: { name, role } },
      );
      const token = result.data?.createApiToken.token;
      if (!token) throw new Error(`createApiToken failed: ${JSON.stringify(result)}`);
      return token;
    },
  };
}
