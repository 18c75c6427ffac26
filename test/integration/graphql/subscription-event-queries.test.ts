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
  /** Prisma calls made through `db`, by `model.method`. */
  const calls = new Map<string, number>();

  beforeAll(() => {
    const client = new PrismaClient({
      adapter: new PrismaPg({ connectionString: api.database.url, max: 4 }, { schema: 'control_plane' }),
      log: [{ emit: 'event', level: 'query' }],
    });
    client.$on('query', (event) => statements.push(event.query));
    db = countingCalls(client as unknown as ControlPlaneDb, calls);
  });

  afterAll(async () => {
    await db?.$disconnect();
  });

  interface Published {
    readonly runGlobalId: string;
    /** Publishes the run's events: EVENTS_PER_TARGET rounds over its targets, then RUN_FINISHED. */
    publish(): void;
    readonly total: number;
  }

  /** A RUNNING run of TARGETS targets, each on a tenant database of its own. */
  async function createRun(): Promise<Published> {
    const run = await api.app.db.migrationRun.create({
      data: { kind: 'MIGRATE', status: 'RUNNING', concurrency: 1, total: TARGETS, pending: TARGETS },
    });
    const tenants = await Promise.all(
      Array.from({ length: TARGETS }, (_, i) =>
        api.app.db.tenant.create({
          data: {
            name: api.tenantName(`ev-${run.id.slice(0, 6)}-${i}`),
            status: 'ACTIVE',
            databases: {
              create: {
                connectionStringEncrypted: 'unused',
                databaseName: api.database.name,
                host: '127.0.0.1',
                schemaName: `tenant_ev_${run.id.slice(0, 6)}_${i}`,
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
    const total = TARGETS * EVENTS_PER_TARGET;
    return {
      runGlobalId: encodeGlobalID('MigrationRun', run.id),
      total,
      publish() {
        let n = 0;
        for (let round = 0; round < EVENTS_PER_TARGET; round++)
          for (const target of targets) api.app.events.publish(event(run.id, target.id, ++n, total));
        api.app.events.publish({ ...event(run.id, null, total + 1, total), type: RunEventType.RUN_FINISHED });
      },
    };
  }

  function countingYoga() {
    return createGraphqlYoga({
      config: api.config,
      db: db!,
      services: api.app.services,
      events: api.app.events,
      eventsReady: async () => undefined,
      logger: createLogger('silent'),
    });
  }

  /** Subscribes to EVENTS_WITH_RECORDS over SSE as the admin, through the counting yoga. */
  async function openRecordsStream(runGlobalId: string): Promise<ReadableStreamDefaultReader<Uint8Array>> {
    const response = await countingYoga().fetch('http://localhost/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${BOOTSTRAP_TOKEN}`,
      },
      body: JSON.stringify({ query: EVENTS_WITH_RECORDS, variables: { id: runGlobalId } }),
    });
    return response.body!.getReader();
  }

  /** Waits until this process's API listens on the run's channel (the yoga here has no eventsReady). */
  async function waitForSubscriber(runGlobalId: string): Promise<void> {
    const runId = Buffer.from(runGlobalId, 'base64').toString('utf8').split(':')[1];
    const redis = createRedisConnection(api.config.redisUrl, 'test-count');
    try {
      const channel = `${api.config.redisPrefix}:run-events:${runId}`;
      await expectEventually(async () => expect(await countSubscribers(redis, channel)).toBe(1));
    } finally {
      await redis.quit();
    }
  }

  function expectAllEvents(received: ReceivedEvent[], total: number): void {
    // Every event, in order, each with its run.
    expect(received.map((e) => e.version)).toEqual([
      null,
      ...Array.from({ length: total + 1 }, (_, i) => String(i + 1)),
    ]);
    expect(received.every((e) => e.run !== null)).toBe(true);
    expect(received.at(-1)?.type).toBe('RUN_FINISHED');
  }

  it('are read in a bounded number of statements over SSE, not one per event and field', async () => {
    const run = await createRun();
    const reader = await openRecordsStream(run.runGlobalId);
    const text = await readUntil(reader, 'SNAPSHOT');
    expect(text).toContain('SNAPSHOT');
    await waitForSubscriber(run.runGlobalId);
    statements.length = 0;

    run.publish();
    const received = parseEvents(text + (await readUntil(reader, null)));
    expectAllEvents(received, run.total);
    // One statement per event and field would be 2,001; batches read each model once.
    expect(statements.length).toBeLessThan(run.total / 10);
  });

  it('read a record once for all the events of a batch that ask for it, not once per event', async () => {
    const run = await createRun();
    const reader = await openRecordsStream(run.runGlobalId);
    const text = await readUntil(reader, 'SNAPSHOT');
    await waitForSubscriber(run.runGlobalId);
    calls.clear();

    run.publish();
    const received = parseEvents(text + (await readUntil(reader, null)));
    expectAllEvents(received, run.total);
    // Every event of a batch reads the same run: one call per batch, not 1,001. Each target has
    // EVENTS_PER_TARGET events spread over the run, so a batch of 64 reads each of its 20 once.
    expect(calls.get('migrationRun.findUniqueOrThrow') ?? 0).toBeLessThan(run.total / 20);
    expect(calls.get('migrationRunTarget.findUnique') ?? 0).toBeLessThan(run.total / 2);
  });

  it('are read in a bounded number of statements over WebSocket too', async () => {
    const run = await createRun();
    const yoga = countingYoga();
    // What the graphql-ws server does with a subscribe message (src/graphql/use-websocket.ts).
    const params = { query: EVENTS_WITH_RECORDS, variables: { id: run.runGlobalId } };
    const { schema, subscribe, contextFactory, parse } = yoga.getEnveloped({
      params,
      connectionParams: { authorization: `Bearer ${BOOTSTRAP_TOKEN}` },
    });
    const stream = (await subscribe({
      schema,
      document: parse(params.query),
      variableValues: params.variables,
      contextValue: await contextFactory(),
    })) as AsyncIterableIterator<{ data: { migrationRunEvents: ReceivedEvent } }>;
    const received: ReceivedEvent[] = [];
    const first = await stream.next();
    received.push(first.value.data.migrationRunEvents);
    await waitForSubscriber(run.runGlobalId);
    statements.length = 0;

    run.publish();
    // graphql-ws reads one result at a time, as this loop does.
    for await (const result of stream) received.push(result.data.migrationRunEvents);

    expectAllEvents(received, run.total);
    expect(statements.length).toBeLessThan(run.total / 10);
  });
});

/** Reads the SSE body until its text includes `until` (null: until it ends); returns what was read. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: string | null,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  while (until === null || !text.includes(until)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

function parseEvents(text: string): ReceivedEvent[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => (JSON.parse(line.slice(6)) as { data: { migrationRunEvents: ReceivedEvent } }).data)
    .map((data) => data.migrationRunEvents);
}

/** `db`, counting the calls made on its run and target models. */
function countingCalls(db: ControlPlaneDb, calls: Map<string, number>): ControlPlaneDb {
  const counted = new Set(['migrationRun', 'migrationRunTarget']);
  return new Proxy(db, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (typeof property === 'string' && counted.has(property)) {
        const model = value as Record<string, unknown>;
        return new Proxy(model, {
          get(delegate, method) {
            const fn: unknown = Reflect.get(delegate, method);
            if (typeof fn !== 'function' || typeof method !== 'string') return fn;
            return (...args: unknown[]) => {
              const name = `${property}.${method}`;
              calls.set(name, (calls.get(name) ?? 0) + 1);
              return (fn as (...a: unknown[]) => unknown).apply(delegate, args);
            };
          },
        });
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

interface ReceivedEvent {
  readonly type: string;
  readonly version: string | null;
  readonly run: { id: string } | null;
}

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
