/**
 * A tenant server that goes down mid-run fails only its own targets (transiently, with the
 * queue's backoff) while the run goes on elsewhere; once it is back, a retry completes the run.
 * The second server is reached through a TCP proxy the test cuts, so no other test's server stops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDatabase } from '../../../src/config.js';
import { startProxy, type ChaosProxy } from '../../chaos/chaos-env.js';
import { expectEventually } from '../../helpers/eventually.js';
import { useSecondServer } from '../../helpers/second-server.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { createTenantsOn } from './fleet-servers.js';

describe('a database server down mid-run', () => {
  // Five tries (15 s of backoff) so the cut server's targets give up within the test.
  const h = useRunHarness('slow', { WORKER_CONCURRENCY: '8', TARGET_JOB_ATTEMPTS: '5' });
  const second = useSecondServer();
  let proxy: ChaosProxy;
  let flakyId: string;
  const oneIds: string[] = [];
  const twoIds: string[] = [];

  beforeAll(async () => {
    proxy = await startProxy(Number(new URL(second.url).port));
    const proxied = withDatabase(`postgresql://postgres@127.0.0.1:${proxy.port}/postgres`, second.name);
    const defaultServer = await h.servers.defaultServer();
    await h.servers.updateDatabaseServer({ id: defaultServer.id, maxConcurrentMigrations: 3 });
    const flaky = await h.servers.registerDatabaseServer({
      name: 'flaky',
      connectionString: proxied,
      maxConcurrentMigrations: 2,
    });
    flakyId = flaky.id;
    oneIds.push(
      ...(await createTenantsOn(h, { serverId: defaultServer.id, url: h.database.url }, 'one', 10)),
    );
    twoIds.push(...(await createTenantsOn(h, { serverId: flaky.id, url: proxied }, 'two', 10)));
  });
  afterAll(() => proxy?.close());

  it("fails only that server's targets, and a retry after it is back completes the run", async () => {
    await h.startWorker();
    const run = await h.service.startMigrationRun({ concurrency: 20 }, ACTOR);
    // Mid-run: the first targets have succeeded, most of the flaky server's are still to go.
    await expectEventually(
      async () => {
        const row = await h.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
        expect(row.succeeded).toBeGreaterThan(0);
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    proxy.cut();
    // Its waiting targets are woken at once by the wider budget, so their retries run side by side.
    await h.servers.updateDatabaseServer({ id: flakyId, maxConcurrentMigrations: 10 });
    const finished = await expectEventually(
      async () => {
        const row = await h.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
        expect(row.finishedAt).not.toBeNull();
        return row;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    expect(finished.status).toBe('FAILED');
    const targets = await h.db.migrationRunTarget.findMany({ where: { runId: run.id } });
    const ofServer = (ids: string[]) => targets.filter((target) => ids.includes(target.tenantId!));
    expect(ofServer(oneIds).map((target) => target.status)).toEqual(Array(10).fill('SUCCEEDED'));
    const failed = ofServer(twoIds).filter((target) => target.status === 'FAILED');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length + ofServer(twoIds).filter((t) => t.status === 'SUCCEEDED').length).toBe(10);
    // Transient: each was tried again with backoff before it was recorded FAILED.
    for (const target of failed) expect(target.attempts).toBeGreaterThan(1);

    proxy.restore();
    await h.service.retryRun(run.id, ACTOR);
    await expectEventually(
      async () => {
        const row = await h.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
        expect(row).toMatchObject({ status: 'SUCCEEDED', succeeded: 20 });
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const tables = await second.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'price'`,
    );
    expect(tables[0]!.n).toBe(10);
  });
});
