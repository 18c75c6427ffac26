import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRunEventBus,
  EVENTS_PER_MESSAGE,
  PUBLISH_LINGER_MS,
  RunEventType,
  SUBSCRIBER_BACKLOG,
} from '../../../src/pubsub/run-events.js';
import { expectEventually } from '../../helpers/eventually.js';
import type { RunEvent } from '../../../src/pubsub/run-events.js';
import {
  createPublisher,
  createRedisConnection,
  prepareSubscriber,
  subscriptionsLive,
} from '../../../src/redis/connections.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function event(runId: string, type: RunEvent['type'], n: number): RunEvent {
  const progress = { total: n, pending: 0, running: 0, succeeded: n, failed: 0, skipped: 0, cancelled: 0 };
  return { type, at: new Date().toISOString(), runId, runStatus: 'RUNNING', progress, version: String(n) };
}

/** The messages Redis delivers on `channels`, as they are (one per PUBLISH), to a plain subscriber. */
async function rawMessages(...channels: string[]) {
  const raw = createRedisConnection(REDIS_URL, 'test-raw');
  const messages: string[] = [];
  raw.on('message', (_channel: string, message: string) => messages.push(message));
  await raw.subscribe(...channels);
  return { raw, messages };
}

describe('the run event bus', () => {
  const prefix = `t-${randomUUID()}`;
  const publishClient = createRedisConnection(REDIS_URL, 'test-publish');
  const subscribeClient = createRedisConnection(REDIS_URL, 'test-subscribe');
  const bus = createRunEventBus({ publishClient, subscribeClient, prefix });
  const otherSubscribeClient = createRedisConnection(REDIS_URL, 'test-subscribe-2');
  const other = createRunEventBus({
    publishClient,
    subscribeClient: otherSubscribeClient,
    prefix: `t-${randomUUID()}`,
  });

  beforeAll(async () => {
    // As in the service, connections are ready before anyone subscribes (prepareSubscriber): on a
    // cluster a PING left the subscriber connection unopened, and a SUBSCRIBE written during its
    // ready check dropped it with the other deployment's subscription (a 60 s timeout).
    await publishClient.ping();
    await Promise.all(
      [subscribeClient, otherSubscribeClient].map((client) => prepareSubscriber(client, `${prefix}:ready`)),
    );
  });

  afterAll(() => {
    // Pub/sub leaves no keys behind; only the connections need closing.
    for (const client of [publishClient, subscribeClient, otherSubscribeClient]) client.disconnect();
  });

  it('keeps a subscriber that falls far behind alive: the oldest events go, the newest (RUN_FINISHED) arrive', async () => {
    const runId = randomUUID();
    const live = bus.subscribeRun(runId);
    // A second subscriber reads everything, so the test knows when all events have arrived while
    // `live` has not read any of them yet.
    const probe = bus.subscribeRun(runId);
    const probeFirst = probe.next();
    const first = live.next();
    // Let SUBSCRIBE reach Redis before publishing.
    await subscriptionsLive(subscribeClient, `${prefix}:ready`);
    const total = SUBSCRIBER_BACKLOG + 1500;
    for (let n = 1; n < total; n++) bus.publish(event(runId, RunEventType.MIGRATION_APPLIED, n));
    bus.publish(event(runId, RunEventType.RUN_FINISHED, total));
    let probed = [(await probeFirst).value as RunEvent];
    while (probed.at(-1)?.type !== RunEventType.RUN_FINISHED)
      probed = [(await probe.next()).value as RunEvent];
    await probe.return?.();
    const received: RunEvent[] = [(await first).value as RunEvent];
    for (;;) {
      const next = await live.next();
      if (next.done) break;
      received.push(next.value);
      if (next.value.type === RunEventType.RUN_FINISHED) break;
    }
    await live.return?.();
    expect(received.at(-1)?.type).toBe(RunEventType.RUN_FINISHED);
    expect(received.length).toBeLessThanOrEqual(SUBSCRIBER_BACKLOG + 1);
    expect(received.length).toBeGreaterThan(SUBSCRIBER_BACKLOG / 2);
    // What arrives is in publication order.
    const versions = received.map((e) => Number(e.version));
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
  });

  it('sends the events of one turn as one message per topic, each delivered on its own', async () => {
    const runId = randomUUID();
    const tenantId = randomUUID();
    const { raw, messages } = await rawMessages(`${prefix}:run-events:${runId}`);
    const live = bus.subscribeRun(runId);
    const tenant = bus.subscribeTenant(tenantId);
    await subscriptionsLive(subscribeClient, `${prefix}:ready`);
    const count = EVENTS_PER_MESSAGE + 10;
    for (let n = 1; n <= count; n++)
      bus.publish({ ...event(runId, RunEventType.MIGRATION_APPLIED, n), tenantId });
    bus.publish(event(runId, RunEventType.RUN_FINISHED, count + 1));
    const received: RunEvent[] = [];
    for await (const one of live) received.push(one);
    expect(received.map((e) => Number(e.version))).toEqual(
      Array.from({ length: count + 1 }, (_, i) => i + 1),
    );
    const ofTenant: RunEvent[] = [];
    for await (const one of tenant) {
      ofTenant.push(one);
      if (ofTenant.length === count) break;
    }
    expect(ofTenant.map((e) => Number(e.version))).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    // Two messages on the run topic: a full one, then the rest of the turn.
    await expectEventually(() => expect(messages).toHaveLength(2));
    expect((JSON.parse(messages[0]!) as RunEvent[]).length).toBe(EVENTS_PER_MESSAGE);
    raw.disconnect();
  });

  it('sends what one target publishes over several turns (its migrations, then its end) as one message per topic', async () => {
    // A target's MIGRATION_APPLIED events and its TARGET_SUCCEEDED are published in different
    // turns (the finish's round trips lie between them): they wait for each other a little and go
    // as one PUBLISH per topic, not one per turn.
    const runId = randomUUID();
    const tenantId = randomUUID();
    const { raw, messages } = await rawMessages(
      `${prefix}:run-events:${runId}`,
      `${prefix}:tenant-events:${tenantId}`,
    );
    const live = bus.subscribeRun(runId);
    await subscriptionsLive(subscribeClient, `${prefix}:ready`);
    for (let n = 1; n <= 5; n++)
      bus.publish({ ...event(runId, RunEventType.MIGRATION_APPLIED, n), tenantId });
    await new Promise((resolve) => setImmediate(resolve));
    bus.publish({ ...event(runId, RunEventType.TARGET_SUCCEEDED, 6), tenantId });
    const received: RunEvent[] = [];
    for await (const one of live) {
      received.push(one);
      if (received.length === 6) break;
    }
    expect(received.map((e) => `${e.type} ${e.version}`)).toEqual([
      ...[1, 2, 3, 4, 5].map((n) => `MIGRATION_APPLIED ${n}`),
      'TARGET_SUCCEEDED 6',
    ]);
    // One message on each of the two topics.
    await expectEventually(() => expect(messages).toHaveLength(2));
    expect(messages.map((m) => (JSON.parse(m) as RunEvent[]).length)).toEqual([6, 6]);
    raw.disconnect();
  });

  it('sends what is waiting when the bus is flushed (a process closing)', async () => {
    const runId = randomUUID();
    const live = bus.subscribeRun(runId);
    const first = live.next();
    await subscriptionsLive(subscribeClient, `${prefix}:ready`);
    // A closing worker's bus, with a publish connection of its own that it quits right after.
    const closingClient = createRedisConnection(REDIS_URL, 'test-publish-closing', { autoPipelining: true });
    await closingClient.ping();
    const closing = createRunEventBus({
      publishClient: closingClient,
      subscribeClient: otherSubscribeClient,
      prefix,
    });
    closing.publish(event(runId, RunEventType.TARGET_SUCCEEDED, 1));
    await closing.flush();
    await closingClient.quit();
    expect(((await first).value as RunEvent).version).toBe('1');
    await live.return?.();
  });

  it('loses an event Redis refuses, not the process (no unhandled rejection)', async () => {
    // A publish connection that is gone (Redis restarted under a closing process): the events are
    // signals and the control-plane DB the record, so the bus drops them. An unhandled rejection
    // would end the worker (and fail this test file).
    const goneClient = createRedisConnection(REDIS_URL, 'test-publish-gone');
    await goneClient.ping();
    goneClient.disconnect();
    const gone = createRunEventBus({
      publishClient: goneClient,
      subscribeClient: otherSubscribeClient,
      prefix,
    });
    const runId = randomUUID();
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      // Sent after the linger, at the end of the turn and at once.
      gone.publish(event(runId, RunEventType.TARGET_STARTED, 1));
      await new Promise((resolve) => setTimeout(resolve, PUBLISH_LINGER_MS * 2));
      gone.publish(event(runId, RunEventType.TARGET_FAILED, 2));
      gone.publish(event(runId, RunEventType.RUN_FINISHED, 3));
      // The end of the turn and the linger have passed, and the rejections have been reported.
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
  });

  it('sends an event that ends a run when it is published, with what its turn published before it', async () => {
    // A worker publishes RUN_FINISHED and then, in the same turn, completes the BullMQ job (a
    // Lua script on Redis): the event must not wait behind it for the end of the turn.
    const runId = randomUUID();
    const tenantId = randomUUID();
    const tenant = bus.subscribeTenant(tenantId);
    await subscriptionsLive(subscribeClient, `${prefix}:ready`);
    bus.publish({ ...event(runId, RunEventType.TARGET_SUCCEEDED, 1), tenantId });
    bus.publish({ ...event(runId, RunEventType.RUN_FINISHED, 2), tenantId });
    // Sent the way the bus sends (on a cluster, through the same pinned master) in the same turn,
    // after the event that ended the run.
    const after = { ...event(runId, RunEventType.SNAPSHOT, 3), tenantId };
    void createPublisher(publishClient).publish(`${prefix}:tenant-events:${tenantId}`, JSON.stringify(after));
    const received: string[] = [];
    for await (const one of tenant) {
      received.push(`${one.type} ${one.version}`);
      if (received.length === 3) break;
    }
    expect(received).toEqual(['TARGET_SUCCEEDED 1', 'RUN_FINISHED 2', 'SNAPSHOT 3']);
  });

  it('delivers events only to the deployment with the same prefix', async () => {
    const runId = randomUUID();
    const mine = bus.subscribeRun(runId);
    const theirs = other.subscribeRun(runId);
    const mineNext = mine.next();
    const theirsNext = theirs.next();
    // Both deployments' subscriptions must be live: on a cluster each subscriber connection is
    // its own node's, and a publish before `theirs` is live would never reach it.
    await subscriptionsLive(subscribeClient, `${prefix}:ready`);
    await subscriptionsLive(otherSubscribeClient, `${prefix}:ready`);
    bus.publish(event(runId, RunEventType.RUN_STARTED, 1));
    // Sent before ours on the same connection (an event that ends a run goes at once): if it leaked
    // across prefixes, mine would get it first.
    other.publish(event(runId, RunEventType.RUN_FINISHED, 2));
    expect(((await mineNext).value as RunEvent).type).toBe(RunEventType.RUN_STARTED);
    expect(((await theirsNext).value as RunEvent).type).toBe(RunEventType.RUN_FINISHED);
    await mine.return?.();
    await theirs.return?.();
  });
});
