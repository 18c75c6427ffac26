/**
 * The fault suite: fleet runs over real PostgreSQL and Redis while workers are SIGKILLed, the
 * PostgreSQL cluster restarts, Redis restarts with every key lost, the tenant server is unreachable
 * and a worker gets SIGTERM in the middle of a long migration. After each run: it ended SUCCEEDED,
 * no tenant is half-migrated, no migration ran twice, the counters equal a recount and the
 * subscription ended with RUN_FINISHED.
 *
 * `npm test` runs a reduced form; `npm run chaos` the full one (CHAOS_* variables below).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureChaosCluster,
  hasClusterTools,
  startChaosRedis,
  startProxy,
  startService,
  stopService,
  waitFor,
  withRetriedConnection,
  type ChaosCluster,
  type ChaosProxy,
  type ChaosRedis,
  type ServiceProcess,
} from './chaos-env.js';

const TENANTS = Number(process.env.CHAOS_TENANTS ?? 24);
const WORKER_KILLS = Number(process.env.CHAOS_WORKER_KILLS ?? 2);
const OUTAGE_MS = Number(process.env.CHAOS_OUTAGE_MS ?? 3000);
const WORKERS = Number(process.env.CHAOS_WORKERS ?? 2);
// Seconds one tenant spends in 0002 (up and down), so that faults land while runs are going.
const SLEEP_S = process.env.CHAOS_SLEEP_S ?? '0.25';
const RUN_CONCURRENCY = 4;
const RUN_TIMEOUT_MS = Number(process.env.CHAOS_RUN_TIMEOUT_MS ?? 120_000);
const CATALOG = path.resolve(import.meta.dirname, '../fixtures/migrations/chaos');
const ALL_VERSIONS = ['0001', '0002', '0003', '0004'];
const TOKEN = `chaos-${randomBytes(12).toString('hex')}`;

interface Fault {
  readonly name: string;
  inject(): Promise<void>;
}

interface FaultReport {
  readonly run: string;
  readonly injected: string[];
  readonly midRun: number;
}

describe.skipIf(!hasClusterTools())('fleet runs under faults', () => {
  const suffix = randomBytes(4).toString('hex');
  const controlPlaneDb = `chaos_cp_${suffix}`;
  const tenantsDb = `chaos_tenants_${suffix}`;
  let cluster: ChaosCluster;
  let redis: ChaosRedis;
  let proxy: ChaosProxy;
  let api: ServiceProcess;
  const workers: ServiceProcess[] = [];
  let env: Record<string, string>;
  const reports: FaultReport[] = [];
  const remedied: { run: string; invalidIndexesDropped: number }[] = [];

  beforeAll(async () => {
    cluster = await ensureChaosCluster();
    redis = await startChaosRedis();
    proxy = await startProxy(cluster.port);
    env = {
      NODE_ENV: 'development',
      DATABASE_URL: cluster.url(controlPlaneDb),
      // Tenant DDL goes through the proxy, so the suite can make the tenant server unreachable.
      TENANT_DATABASE_URL: `postgresql://postgres@127.0.0.1:${proxy.port}/${tenantsDb}`,
      REDIS_URL: redis.url,
      REDIS_PREFIX: `chaos-${suffix}`,
      MIGRATIONS_DIR: CATALOG,
      BOOTSTRAP_ADMIN_TOKEN: TOKEN,
      WORKER_CONCURRENCY: '4',
      RECONCILE_INTERVAL_MS: '1000',
      WORKER_LOCK_DURATION_MS: '3000',
    };
    api = await startService('api', env);
    for (let i = 0; i < WORKERS; i += 1) workers.push(await startService('worker', env));
    await withRetriedConnection(cluster.url(), (client) =>
      client.query(`ALTER DATABASE ${tenantsDb} SET chaos.sleep_s = '${SLEEP_S}'`),
    );
    await createFleet();
  }, 300_000);

  afterAll(async () => {
    for (const service of [api, ...workers]) if (service) await stopService(service, 'SIGKILL');
    await proxy?.close();
    await redis?.stop();
    if (cluster) {
      await withRetriedConnection(cluster.url(), async (client) => {
        for (const database of [controlPlaneDb, tenantsDb]) {
          await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        }
      });
    }
    console.log(
      `chaos summary ${JSON.stringify({ tenants: TENANTS, workers: WORKERS, runs: reports, remedied })}`,
    );
  }, 120_000);

  it(
    'rolls the fleet back while workers are killed and PostgreSQL restarts',
    async () => {
      const runId = await startRun('startRollback', 'StartRollbackSuccess', '0001');
      await runThrough(runId, [
        ...killWorkers(Math.ceil(WORKER_KILLS / 2)),
        { name: 'postgres restart', inject: () => cluster.restart() },
      ]);
      await expectFleetAt(runId, ['0001']);
    },
    RUN_TIMEOUT_MS + 60_000,
  );

  it(
    'migrates the fleet up through a Redis restart with its data lost, a tenant-server outage, SIGTERM and kills',
    async () => {
      const runId = await startRun('startMigrationRun', 'StartMigrationRunSuccess', '0004');
      await runThrough(runId, [
        {
          name: 'redis restart, every key lost',
          inject: () => redis.restartEmpty(),
        },
        {
          name: `tenant server unreachable for ${OUTAGE_MS} ms`,
          inject: async () => {
            proxy.cut();
            await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
            proxy.restore();
          },
        },
        {
          name: 'SIGTERM of a worker in a long migration, then a new worker',
          inject: async () => {
            const index = workers.length - 1;
            const how = await stopService(workers[index]!, 'SIGTERM');
            expect(how, 'a worker stops cleanly on SIGTERM').toBe('0');
            workers[index] = await startService('worker', env);
          },
        },
        ...killWorkers(Math.floor(WORKER_KILLS / 2)),
      ]);
      await remedyInvalidIndexes(runId);
      await expectFleetAt(runId, ALL_VERSIONS);
    },
    RUN_TIMEOUT_MS + 60_000,
  );

  function killWorkers(count: number): Fault[] {
    return Array.from({ length: count }, (_, i) => ({
      name: `SIGKILL worker ${i + 1}`,
      inject: async () => {
        const index = i % workers.length;
        await stopService(workers[index]!, 'SIGKILL');
        workers[index] = await startService('worker', env);
      },
    }));
  }

  /** Injects each fault once the run has made progress since the last one, then waits for its end. */
  async function runThrough(runId: string, faults: Fault[]): Promise<void> {
    const finished = subscribeUntilFinished(runId).catch((error: unknown) => [
      `stream broke: ${String(error)}`,
    ]);
    const injected: string[] = [];
    let midRun = 0;
    let done = await finishedTargets(runId);
    for (const fault of faults) {
      await waitFor(
        async () => (await finishedTargets(runId)) > done || (await runEnded(runId)),
        RUN_TIMEOUT_MS,
        'progress',
      );
      if (!(await runEnded(runId))) midRun += 1;
      await fault.inject();
      injected.push(fault.name);
      expectAlive(fault.name);
      done = await finishedTargets(runId);
    }
    await waitFor(() => runEnded(runId), RUN_TIMEOUT_MS, `run ${runId} to end`);
    const events = await finished;
    expect(events.at(0)).toBe('SNAPSHOT');
    expect(events.at(-1)).toBe('RUN_FINISHED');
    reports.push({ run: runId, injected, midRun });
    expectAlive('the end of the run');
  }

  /**
   * A CREATE INDEX CONCURRENTLY cut short by a fault leaves an INVALID index; by design (issue 10
   * item 6) the file then fails, naming the index, and is not recorded. This does what that error
   * says (DROP INDEX CONCURRENTLY, then retryMigrationRun) and waits for the retried run, so the
   * checks that follow judge the recovered fleet. Any other failure is left for them to report.
   */
  async function remedyInvalidIndexes(runId: string): Promise<void> {
    const failed = await controlPlane((client) =>
      client.query<{ error: string }>(
        `SELECT error FROM control_plane.migration_run_targets WHERE run_id = $1 AND status = 'failed'`,
        [runId],
      ),
    );
    const invalid = failed.rows.filter((row) =>
      /invalid index .* left by a failed CREATE INDEX CONCURRENTLY/.test(row.error),
    );
    if (failed.rows.length === 0 || invalid.length !== failed.rows.length) return;
    const indexes = invalid.flatMap((row) =>
      [...row.error.matchAll(/DROP INDEX CONCURRENTLY ([\w.]+)/g)].map((m) => m[1]!),
    );
    await withRetriedConnection(cluster.url(tenantsDb), async (client) => {
      for (const index of indexes) await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${index}`);
    });
    const retried = await gql<{ retryMigrationRun: { __typename: string } }>(
      `mutation ($id: ID!) { retryMigrationRun(input: { id: $id }) { __typename } }`,
      { id: Buffer.from(`MigrationRun:${runId}`).toString('base64') },
    );
    expect(retried.data?.retryMigrationRun.__typename, JSON.stringify(retried)).toBe(
      'RetryMigrationRunSuccess',
    );
    await waitFor(() => runEnded(runId), RUN_TIMEOUT_MS, `retried run ${runId} to end`);
    remedied.push({ run: runId, invalidIndexesDropped: indexes.length });
  }

  function expectAlive(after: string): void {
    for (const service of [api, ...workers]) {
      expect(
        service.isAlive(),
        `${service.role} survives ${after}:\n${service.lines.slice(-6).join('\n')}`,
      ).toBe(true);
    }
  }

  async function expectFleetAt(runId: string, versions: string[]): Promise<void> {
    await controlPlane(async (client) => {
      const run = await client.query(
        `SELECT upper(status::text) AS status, total, pending, running, succeeded, failed, skipped, cancelled
           FROM control_plane.migration_runs WHERE id = $1`,
        [runId],
      );
      const recount = await client.query<{ status: string; n: number }>(
        `SELECT upper(status::text) AS status, count(*)::int AS n
           FROM control_plane.migration_run_targets WHERE run_id = $1 GROUP BY 1`,
        [runId],
      );
      const n = (...statuses: string[]) =>
        recount.rows.filter((row) => statuses.includes(row.status)).reduce((sum, row) => sum + row.n, 0);
      const failures = await client.query<{ error: string; n: number }>(
        `SELECT coalesce(error, '') AS error, count(*)::int AS n FROM control_plane.migration_run_targets
          WHERE run_id = $1 AND status <> 'succeeded' GROUP BY 1 ORDER BY 2 DESC LIMIT 5`,
        [runId],
      );
      expect(run.rows[0], `targets not succeeded: ${JSON.stringify(failures.rows)}`).toEqual({
        status: 'SUCCEEDED',
        total: TENANTS,
        pending: n('PENDING', 'QUEUED'),
        running: n('RUNNING'),
        succeeded: n('SUCCEEDED'),
        failed: n('FAILED'),
        skipped: n('SKIPPED'),
        cancelled: n('CANCELLED'),
      });
      expect(n('SUCCEEDED')).toBe(TENANTS);
      const databases = await client.query<{ schema_name: string; status: string; schema_version: string }>(
        `SELECT schema_name, upper(status::text) AS status, schema_version
           FROM control_plane.tenant_databases ORDER BY schema_name`,
      );
      expect(databases.rows).toHaveLength(TENANTS);
      for (const row of databases.rows) {
        expect({ status: row.status, version: row.schema_version }, row.schema_name).toEqual({
          status: 'ACTIVE',
          version: versions.at(-1),
        });
      }
      await withRetriedConnection(cluster.url(tenantsDb), async (tenants) => {
        for (const { schema_name: schema } of databases.rows) await expectTenantAt(tenants, schema, versions);
      });
    });
  }

  async function expectTenantAt(client: pg.Client, schema: string, versions: string[]): Promise<void> {
    const ledger = await client.query<{ version: string }>(
      `SELECT version FROM ${schema}.${await ledgerTable(client, schema)} ORDER BY version`,
    );
    expect(
      ledger.rows.map((row) => row.version),
      `${schema} ledger`,
    ).toEqual(versions);
    const log = await client.query<{ version: string; n: number }>(
      `SELECT version, count(*)::int AS n FROM ${schema}.migration_log GROUP BY version ORDER BY version`,
    );
    expect(
      Object.fromEntries(log.rows.map((row) => [row.version, row.n])),
      `${schema}: each migration once`,
    ).toEqual(Object.fromEntries(versions.map((version) => [version, 1])));
    const structure = await client.query<{ status_column: boolean; orders: boolean; name_index: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM information_schema.columns
                       WHERE table_schema = $1 AND table_name = 'items' AND column_name = 'status') AS status_column,
              to_regclass($1 || '.orders') IS NOT NULL AS orders,
              EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = $1 AND c.relname = 'items_name_idx' AND i.indisvalid) AS name_index`,
      [schema],
    );
    expect(structure.rows[0], `${schema} structure`).toEqual({
      status_column: versions.includes('0002'),
      orders: versions.includes('0003'),
      name_index: versions.includes('0004'),
    });
  }

  async function ledgerTable(client: pg.Client, schema: string): Promise<string> {
    // The ledger's name is the engine's; find it by its columns rather than hard-coding it.
    const result = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.columns
        WHERE table_schema = $1 AND column_name = 'checksum' AND table_name <> 'migration_log' LIMIT 1`,
      [schema],
    );
    return result.rows[0]!.table_name;
  }

  async function createFleet(): Promise<void> {
    const names = Array.from({ length: TENANTS }, (_, i) => `chaos-${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 8) {
      await Promise.all(
        names.slice(i, i + 8).map(async (name) => {
          const result = await gql<{ createTenant: { __typename: string } }>(
            `mutation ($name: String!) { createTenant(input: { name: $name }) { __typename } }`,
            { name },
          );
          expect(result.data?.createTenant.__typename, JSON.stringify(result)).toBe('CreateTenantSuccess');
        }),
      );
    }
    await waitFor(
      () =>
        controlPlane(async (client) => {
          const result = await client.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM control_plane.migration_runs WHERE kind = 'provision' AND status = 'succeeded'`,
          );
          return result.rows[0]!.n === TENANTS;
        }),
      RUN_TIMEOUT_MS,
      'every tenant to be provisioned',
    ).catch(async (error: unknown) => {
      const runs = await controlPlane((client) =>
        client.query(
          `SELECT r.status, t.status AS target, t.error, count(*)::int AS n FROM control_plane.migration_runs r
             JOIN control_plane.migration_run_targets t ON t.run_id = r.id GROUP BY 1, 2, 3`,
        ),
      );
      const logs = [api, ...workers].map(
        (service) => `${service.role}: ${service.lines.slice(-8).join('\n')}`,
      );
      throw new Error(`${String(error)}\n${JSON.stringify(runs.rows)}\n${logs.join('\n')}`);
    });
  }

  async function startRun(field: string, success: string, targetVersion: string): Promise<string> {
    const result = await gql<Record<string, { __typename: string; run?: { id: string }; message?: string }>>(
      `mutation ($input: ${field === 'startRollback' ? 'StartRollbackInput' : 'StartMigrationRunInput'}!) {
        ${field}(input: $input) { __typename ... on ${success} { run { id } } ... on Error { message } } }`,
      { input: { targetVersion, concurrency: RUN_CONCURRENCY } },
    );
    const payload = result.data?.[field];
    expect(payload?.__typename, JSON.stringify(result)).toBe(success);
    // The API answers with a Relay global id; the control plane stores the uuid inside it.
    return Buffer.from(payload!.run!.id, 'base64').toString('utf8').split(':')[1]!;
  }

  /** The event types of the run's SSE subscription, resolved when the stream ends. */
  async function subscribeUntilFinished(runId: string): Promise<string[]> {
    const response = await fetch(`http://127.0.0.1:${api.port}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${TOKEN}`,
      },
      body: JSON.stringify({
        query: `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type } }`,
        variables: { id: Buffer.from(`MigrationRun:${runId}`).toString('base64') },
      }),
    });
    const text = await response.text();
    return text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as { data?: { migrationRunEvents: { type: string } } })
      .flatMap((payload) => (payload.data ? [payload.data.migrationRunEvents.type] : []));
  }

  async function gql<T>(
    query: string,
    variables: Record<string, unknown>,
  ): Promise<{ data?: T; errors?: unknown }> {
    const response = await fetch(`http://127.0.0.1:${api.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as { data?: T; errors?: unknown };
  }

  async function finishedTargets(runId: string): Promise<number> {
    return controlPlane(async (client) => {
      const result = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM control_plane.migration_run_targets
          WHERE run_id = $1 AND status IN ('succeeded', 'failed', 'skipped', 'cancelled')`,
        [runId],
      );
      return result.rows[0]!.n;
    });
  }

  async function runEnded(runId: string): Promise<boolean> {
    return controlPlane(async (client) => {
      const result = await client.query(
        `SELECT 1 FROM control_plane.migration_runs WHERE id = $1 AND finished_at IS NOT NULL`,
        [runId],
      );
      return result.rowCount === 1;
    });
  }

  function controlPlane<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    return withRetriedConnection(cluster.url(controlPlaneDb), fn);
  }
});
