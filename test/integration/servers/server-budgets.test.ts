/**
 * Per-server migration budgets: across every run and worker, at most maxConcurrentMigrations
 * targets work on one server at once, sampled from each server's pg_stat_activity.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectEventually } from '../../helpers/eventually.js';
import { useSecondServer } from '../../helpers/second-server.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { createTenantsOn } from './fleet-servers.js';

// Sessions of the workers' tenant pools inside a transaction: a target at work.
const MIGRATING_SESSIONS = `SELECT count(*)::int AS n FROM pg_stat_activity
  WHERE datname = current_database() AND application_name = 'tenant-control-plane'
    AND xact_start IS NOT NULL AND pid <> pg_backend_pid()`;

describe('per-server migration budgets', () => {
  const h = useRunHarness('slow', { WORKER_CONCURRENCY: '8' });
  const second = useSecondServer();
  let secondPool: pg.Pool;
  const tenantIds: string[] = [];

  beforeAll(async () => {
    secondPool = new pg.Pool({ connectionString: second.url, max: 1 });
    const defaultServer = await h.servers.defaultServer();
    await h.servers.updateDatabaseServer({ id: defaultServer.id, maxConcurrentMigrations: 2 });
    const secondServer = await h.servers.registerDatabaseServer({
      name: 'second',
      connectionString: second.url,
      maxConcurrentMigrations: 3,
    });
    const one = await createTenantsOn(h, { serverId: defaultServer.id, url: h.database.url }, 'one', 20);
    const two = await createTenantsOn(h, { serverId: secondServer.id, url: second.url }, 'two', 20);
    tenantIds.push(...one, ...two);
  });
  afterAll(() => secondPool?.end());

  async function sessions(pool: pg.Pool): Promise<number> {
    return (await pool.query<{ n: number }>(MIGRATING_SESSIONS)).rows[0]!.n;
  }

  it('never has more than 2 and 3 targets migrating on the two servers, across two runs and two workers', async () => {
    await h.startWorker();
    await h.startWorker();
    // Two runs, each over half of each server's tenants, each with a window wider than any budget.
    const halves = [tenantIds.filter((_, i) => i % 2 === 0), tenantIds.filter((_, i) => i % 2 === 1)];
    const runs = await Promise.all(
      halves.map((ids) => h.service.startMigrationRun({ tenants: { ids }, concurrency: 20 }, ACTOR)),
    );
    const peak = { one: 0, two: 0, runningOne: 0, runningTwo: 0 };
    await expectEventually(
      async () => {
        peak.one = Math.max(peak.one, await sessions(h.database.pool));
        peak.two = Math.max(peak.two, await sessions(secondPool));
        const statuses = await h.db.migrationRun.findMany({
          where: { id: { in: runs.map((run) => run.id) } },
          select: { status: true },
        });
        expect(statuses.map((run) => run.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
      },
      { timeoutMs: 120_000, intervalMs: 20 },
    );
    expect(peak.one).toBeLessThanOrEqual(2);
    expect(peak.two).toBeLessThanOrEqual(3);
    // The samples did see work on both servers.
    expect(peak.one).toBeGreaterThan(0);
    expect(peak.two).toBeGreaterThan(0);
    const succeeded = await h.db.migrationRunTarget.count({
      where: { runId: { in: runs.map((run) => run.id) }, status: 'SUCCEEDED', deferredAt: null },
    });
    expect(succeeded).toBe(40);
  });
});
