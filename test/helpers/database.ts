/**
 * `useTestDatabase()`: a fresh, uniquely named database per test file (optionally a clone of
 * the migrated control-plane template), dropped after the file's tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import { quoteDatabase, quoteSchema, withConnection } from '../../src/db/pg.js';
import { schemaLockKey } from '../../src/migrations/index.js';
import type { MigrationTarget } from '../../src/migrations/index.js';
import { templateDatabasePrefixOf } from '../../src/templates/database-template.js';
import { secondServerUrl } from './second-server.js';
import { controlPlaneTemplateName, testServerUrl } from './template.js';

// How long a file's teardown waits for its sessions to close before dropping the database.
const SESSION_DRAIN_MS = 3000;
const SESSION_POLL_MS = 25;

/** Options of `useTestDatabase`. */
export interface TestDatabaseOptions {
  /** Clone the migrated control-plane template instead of starting empty. */
  readonly controlPlane?: boolean;
}

/** The database a test file works in; fields are available from `beforeAll` on. */
export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A pg Pool on the database, max 5 connections. */
  readonly pool: pg.Pool;
  /** The migration target of schema `tenant_<name>` (`tenant_` is not doubled), without creating it. */
  tenantTarget(name: string): MigrationTarget;
  /** Creates schema `tenant_<name>` and returns its migration target. */
  createTenantSchema(name: string): Promise<MigrationTarget>;
  /** Drops a schema and everything in it, if it exists. */
  dropSchema(schema: string): Promise<void>;
}

/** Registers beforeAll/afterAll hooks that create and drop this file's own database. */
export function useTestDatabase(options: TestDatabaseOptions = {}): TestDatabase {
  let name: string | undefined;
  let pool: pg.Pool | undefined;

  beforeAll(async () => {
    const testPath = expect.getState().testPath ?? 'unknown';
    const fileHash = createHash('sha256').update(testPath).digest('hex').slice(0, 8);
    const database = `cpt_${fileHash}_${randomBytes(4).toString('hex')}`;
    const template = options.controlPlane ? ` TEMPLATE ${quoteDatabase(controlPlaneTemplateName())}` : '';
    await withConnection(testServerUrl(), (client) =>
      client.query(`CREATE DATABASE ${quoteDatabase(database)}${template}`),
    );
    name = database;
    pool = new pg.Pool({ connectionString: testServerUrl(database), max: 5 });
  });

  afterAll(async () => {
    // Every catalog provisions from a template by default: a DATABASE tenant's made one per server.
    const deploymentId = options.controlPlane ? await deploymentIdOf(pool) : null;
    await pool?.end();
    if (deploymentId) await dropTemplateDatabases(deploymentId);
    if (name) {
      const database = name;
      await withConnection(testServerUrl(), async (client) => {
        // pg-pool's end() resolves before its sockets have closed; give those sessions a moment
        // to leave on their own, or FORCE kills them and their clients raise an unhandled 57P01.
        for (let waited = 0; waited < SESSION_DRAIN_MS; waited += SESSION_POLL_MS) {
          const { rows } = await client.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
            [database],
          );
          if (rows[0]?.n === 0) break;
          await new Promise((resolve) => setTimeout(resolve, SESSION_POLL_MS));
        }
        await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(database)} WITH (FORCE)`);
      });
    }
  });

  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useTestDatabase: the database is available from beforeAll on');
    return value;
  };

  const tenantTarget = (tenant: string): MigrationTarget => {
    const schema = tenant.startsWith('tenant_') ? tenant : `tenant_${tenant}`;
    quoteSchema(schema);
    return { schema, lockKey: schemaLockKey(ready(name), schema) };
  };

  return {
    get name() {
      return ready(name);
    },
    get url() {
      return testServerUrl(ready(name));
    },
    get pool() {
      return ready(pool);
    },
    tenantTarget,
    async createTenantSchema(tenant: string) {
      const target = tenantTarget(tenant);
      await ready(pool).query(`CREATE SCHEMA ${quoteSchema(target.schema)}`);
      return target;
    },
    async dropSchema(schema: string) {
      await ready(pool).query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
    },
  };
}

/** This file's deployment id, once something made it; null before. */
async function deploymentIdOf(pool: pg.Pool | undefined): Promise<string | null> {
  if (!pool) return null;
  const { rows } = await pool
    .query<{ id: string }>('SELECT deployment_id::text AS id FROM control_plane.deployment')
    .catch(() => ({ rows: [] as { id: string }[] }));
  return rows[0]?.id ?? null;
}

/**
 * Drops the template databases a deployment made (on the test server and the second one, when it
 * answers): they outlive the file's own database, and another file's deployment never uses them.
 */
export async function dropTemplateDatabases(deploymentId: string): Promise<void> {
  const prefix = templateDatabasePrefixOf(deploymentId);
  for (const url of [testServerUrl(), secondServerUrl()]) {
    await withConnection(url, async (client) => {
      const { rows } = await client.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE starts_with(datname, $1)',
        [prefix],
      );
      for (const { datname } of rows) {
        // A template database refuses DROP until it is no longer a template.
        await client.query(`ALTER DATABASE ${quoteDatabase(datname)} WITH IS_TEMPLATE false`);
        await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(datname)} WITH (FORCE)`);
      }
    }).catch((error: unknown) => {
      // The second server is only there where a test file asked for it.
      if (url === testServerUrl()) throw error;
    });
  }
}
