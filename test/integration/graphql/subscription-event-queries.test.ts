/**
 * A subscription that selects `run` and `target` on its events reads them from the control-plane
 * DB. A busy run sends thousands of events; read one statement per event and field, in turn, the
 * stream falls seconds behind the run (issue 16: RUN_FINISHED 5 s after the run ended). Events a
 * stream takes together must be read together.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrismaClient } from '../../../src/generated/prisma/client.js';
import type { ControlPlaneDb } from '../../../src/db/control-plane.js';
import { createGraphqlYoga } from '../../../src/graphql/server.js';
import { createLogger } from '../../../src/logger.js';
import { RunEventType, type RunEvent } from '../../../src/pubsub/run-events.js';
import { countSubscribers, createRedisConnection } from '../../../src/redis/connections.js';
import { expectEventually } from '../../helpers/eventually.js';
import { BOOTSTRAP_TOKEN, useApiHarness } from './harness.js';

const EVENTS_WITH_RECORDS = `subscription ($id: ID!) { migrationRunEvents(runId: $id) {
  type version run { id status } target { id status } } }`;
const TARGETS = 20;
const EVENTS_PER_TARGET = 50;

describe('run events that select their run and target', () => {
  // The run is a row with events published by hand: the reconciler must not settle it.
  const api = useApiHarness({ RECONCILE_INTERVAL_MS: '3600000' });
  let db: ControlPlaneDb | undefined;
  const statements: string[] = [];

  beforeAll(() => {
    const client = new PrismaClient({
      adapter: new PrismaPg({ connectionString: api.database.url, max: 4 }, { schema: 'control_plane' }),
      log: [{ emit: 'event', level: 'query' }],
    });
    client.$on('query', (event) => statements.push(event.query));
    db = client as unknown as ControlPlaneDb;
  });

  afterAll(async () => {
    await db?.$disconnect();
  });

  it('are read in a bounded number of statements, not one per event and field', async () => {
    const run = await api.app.db.migrationRun.create({
      data: { kind: 'MIGRATE', status: 'RUNNING', concurrency: 1, total: TARGETS, pending: TARGETS },
    });
    const tenants = await Promise.all(
      Array.from({ length: TARGETS }, (_, i) =>
        api.app.db.tenant.create({
          data: {
            name: api.tenantName(`ev-${i}`),
            status: 'ACTIVE',
            databases: {
              create: {
                connectionStringEncrypted: 'unused',
                databaseName: api.database.name,
                host: '127.0.0.1',
                schemaName: `tenant_ev_${i}`,
                status: 'ACTIVE',
              },
            },
          },
          include: { databases: true },
        }),
      ),
    );
    const targets = await Promise.all(
      tenants.map((tenant, position) =>
        api.app.db.migrationRunTarget.create({
          data: {
            runId: run.id,
            tenantId: tenant.tenantId,
            tenantDatabaseId: tenant.databases[0]!.id,
            position,
            status: 'RUNNING',
          },
        }),
      ),
    );
    const yoga = createGraphqlYoga({
      config: api.config,
      db: db!,
      services: api.app.services,
      events: api.app.events,
      eventsReady: async () => undefined,
      logger: createLogger('silent'),
    });
    const response = await yoga.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${BOOTSTRAP_TOKEN}`,
      },
      body: JSON.stringify({
        query: EVENTS_WITH_RECORDS,
        variables: { id: encodeGlobalID('MigrationRun', run.id) },
      }),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('SNAPSHOT')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toContain('SNAPSHOT');
    const redis = createRedisConnection(api.config.redisUrl, 'test-count');
    try {
      const channel = `${api.config.redisPrefix}:run-events:${run.id}`;
      await expectEventually(async () => expect(await countSubscribers(redis, channel)).toBe(1));
    } finally {
      await redis.quit();
    }
    statements.length = 0;

    const total = TARGETS * EVENTS_PER_TARGET;
    let n = 0;
    for (let round = 0; round < EVENTS_PER_TARGET; round++)
      for (const target of targets) api.app.events.publish(event(run.id, target.id, ++n, total));
    api.app.events.publish({ ...event(run.id, null, total + 1, total), type: RunEventType.RUN_FINISHED });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }

    const received = text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map(
        (line) =>
          (
            JSON.parse(line.slice(6)) as {
              data: { migrationRunEvents: { type: string; version: string; run: { id: string } | null } };
            }
          ).data.migrationRunEvents,
      );
    // Every event, in order, each with its run and (but the last) its target.
    expect(received.map((e) => e.version)).toEqual([
      null,
      ...Array.from({ length: total + 1 }, (_, i) => String(i + 1)),
    ]);
    expect(received.every((e) => e.run !== null)).toBe(true);
    expect(received.at(-1)?.type).toBe('RUN_FINISHED');
    // One statement per event and field would be 2,001; batches read each model once.
    expect(statements.length).toBeLessThan(total / 10);
  });
});

function event(runId: string, targetId: string | null, n: number, total: number): RunEvent {
  return {
    type: RunEventType.MIGRATION_APPLIED,
    at: new Date().toISOString(),
    runId,
    runStatus: 'RUNNING',
    progress: { total, pending: 0, running: total - n, succeeded: n, failed: 0, skipped: 0, cancelled: 0 },
    targetId,
    version: String(n),
  };
}
