import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { beforeAll, describe, expect, it } from 'vitest';
import { RunEventType, SUBSCRIBER_BACKLOG, type RunEvent } from '../../../src/pubsub/run-events.js';
import { expectEventually } from '../../helpers/eventually.js';
import {
  SSE_FLUSH_INTERVAL_MAX_MS,
  SSE_FLUSH_INTERVAL_MIN_MS,
} from '../../../src/graphql/subscription-fanout.js';
import { BOOTSTRAP_TOKEN, useApiHarness } from './harness.js';

const EVENTS = `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type version progress { total succeeded } } }`;
const EVENTS_WITH_RUN = `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type run { id status } } }`;

interface Received {
  readonly events: { type: string; version?: string | null }[];
  /** Socket chunks that carried at least one event. */
  readonly chunks: number;
}

describe('many subscribers on one run', () => {
  // The runs here are rows with events published by hand: the reconciler must not settle them.
  const api = useApiHarness({ RECONCILE_INTERVAL_MS: '3600000' });
  let base = '';

  beforeAll(async () => {
    const port = await api.app.listen(0);
    base = `http://127.0.0.1:${port}`;
  });

  async function createRunningRun(): Promise<{ runId: string; globalId: string }> {
    const run = await api.app.db.migrationRun.create({
      data: { kind: 'MIGRATE', status: 'RUNNING', concurrency: 1, total: 3, pending: 3 },
    });
    return { runId: run.id, globalId: encodeGlobalID('MigrationRun', run.id) };
  }

  function runEvent(runId: string, type: RunEvent['type'], n: number): RunEvent {
    return {
      type,
      at: new Date().toISOString(),
      runId,
      runStatus: type === RunEventType.RUN_FINISHED ? 'SUCCEEDED' : 'RUNNING',
      progress: { total: 3, pending: 3 - n, running: 0, succeeded: n, failed: 0, skipped: 0, cancelled: 0 },
      version: String(n),
    };
  }

  /** POSTs a subscription with `Accept: text/event-stream` as the admin. */
  function openStream(query: string, id: string): Promise<Response> {
    return fetch(`${base}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${BOOTSTRAP_TOKEN}`,
      },
      body: JSON.stringify({ query, variables: { id } }),
    });
  }

  /** Subscribes over real HTTP and collects every event until the server ends the stream. */
  async function subscribe(query: string, globalId: string): Promise<{ done: Promise<Received> }> {
    const response = await openStream(query, globalId);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const done = (async () => {
      let text = '';
      let chunks = 0;
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        const chunk = decoder.decode(value, { stream: true });
        if (chunk.includes('event: next')) chunks++;
        text += chunk;
      }
      expect(text.trimEnd().endsWith('event: complete\ndata:')).toBe(true);
      const events = text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map(
          (line) =>
            (JSON.parse(line.slice(6)) as { data: { migrationRunEvents: Received['events'][0] } }).data,
        )
        .map((data) => data.migrationRunEvents);
      return { events, chunks };
    })();
    return { done };
  }

  it('executes each live event once per distinct query and sends every subscriber all of them in order', async () => {
    const { runId, globalId } = await createRunningRun();
    const fanout = () => metric(base);
    const before = await fanout();
    const same = await Promise.all(Array.from({ length: 12 }, () => subscribe(EVENTS, globalId)));
    const other = await subscribe(EVENTS_WITH_RUN, globalId);
    // Every stream has its SNAPSHOT (executed per subscriber) before the events are published.
    await expectEventually(async () =>
      expect((await fanout()).sse_events_total - before.sse_events_total).toBe(13),
    );

    const burst = 40;
    for (let n = 1; n <= burst; n++)
      api.app.events.publish(runEvent(runId, RunEventType.MIGRATION_APPLIED, n));
    api.app.events.publish(runEvent(runId, RunEventType.RUN_FINISHED, burst + 1));

    const received = await Promise.all(same.map((s) => s.done));
    const versions = Array.from({ length: burst + 1 }, (_, i) => String(i + 1));
    for (const stream of received) {
      expect(stream.events[0]?.type).toBe('SNAPSHOT');
      expect(stream.events.slice(1).map((e) => e.version)).toEqual(versions);
      expect(stream.events.at(-1)?.type).toBe('RUN_FINISHED');
    }
    const withRun = await other.done;
    expect(withRun.events).toHaveLength(burst + 2);

    const after = await fanout();
    const live = burst + 1;
    // 13 snapshots, then each live event once for EVENTS and once for EVENTS_WITH_RUN.
    expect(
      after.graphql_subscription_event_executions_total - before.graphql_subscription_event_executions_total,
    ).toBe(13 + 2 * live);
    expect(
      after.graphql_subscription_shared_results_total - before.graphql_subscription_shared_results_total,
    ).toBe(11 * live);
    // A burst published at once leaves in a few writes per stream, not one per event.
    expect(Math.max(...received.map((s) => s.chunks))).toBeLessThan(live / 2);
    // Ended streams let go of their queue and timers.
    await expectEventually(async () => expect((await fanout()).sse_streams).toBe(0));
  });

  it('encodes the events that many streams of one query send together once, not once per stream', async () => {
    const { runId, globalId } = await createRunningRun();
    const fanout = () => metric(base);
    const before = await fanout();
    const streams = 40;
    const same = await Promise.all(Array.from({ length: streams }, () => subscribe(EVENTS, globalId)));
    await expectEventually(async () =>
      expect((await fanout()).sse_events_total - before.sse_events_total).toBe(streams),
    );
    // A first event finds the streams out of step (each SNAPSHOT went out at its own time, and each
    // stream's next write is due an interval after its last): they may write it apart, up to one
    // chunk each, and fall into step on the shared grid. Not counted.
    let n = 0;
    api.app.events.publish(runEvent(runId, RunEventType.MIGRATION_APPLIED, ++n));
    await delay(2 * SSE_FLUSH_INTERVAL_MAX_MS);
    const live = await fanout();

    // Bursts in turns of their own, each heard by every stream at once.
    const bursts = 5;
    const perBurst = 20;
    for (let burst = 0; burst < bursts; burst++) {
      for (let i = 0; i < perBurst; i++)
        api.app.events.publish(runEvent(runId, RunEventType.MIGRATION_APPLIED, ++n));
      await delay(2 * SSE_FLUSH_INTERVAL_MAX_MS);
    }
    api.app.events.publish(runEvent(runId, RunEventType.RUN_FINISHED, ++n));
    const received = await Promise.all(same.map((s) => s.done));
    const versions = Array.from({ length: n }, (_, i) => String(i + 1));
    for (const stream of received) expect(stream.events.slice(1).map((e) => e.version)).toEqual(versions);

    const after = await fanout();
    const writes = after.sse_writes_total - live.sse_writes_total;
    const built = after.sse_chunks_built_total - live.sse_chunks_built_total;
    // Every stream got each burst in a write of its own ...
    expect(writes).toBeGreaterThanOrEqual(streams * (bursts + 1));
    // ... but the streams took each burst together, so its events were encoded and joined once
    // (one per burst and the end, with room for a stream that flushed apart), not once per stream.
    expect(built).toBeLessThanOrEqual(3 * (bursts + 1));
  });

  it('gives a late subscriber its own SNAPSHOT and only what follows', async () => {
    const { runId, globalId } = await createRunningRun();
    // A stream listens before it reads its SNAPSHOT, so a sent SNAPSHOT means it is live.
    const sseEvents = async () => (await metric(base)).sse_events_total;
    const sent = await sseEvents();
    const early = await subscribe(EVENTS, globalId);
    await expectEventually(async () => expect(await sseEvents()).toBe(sent + 1));
    api.app.events.publish(runEvent(runId, RunEventType.MIGRATION_APPLIED, 1));
    await expectEventually(async () => expect(await sseEvents()).toBe(sent + 2));
    const late = await subscribe(EVENTS, globalId);
    await expectEventually(async () => expect(await sseEvents()).toBe(sent + 3));
    api.app.events.publish(runEvent(runId, RunEventType.RUN_FINISHED, 2));
    const [first, second] = await Promise.all([early.done, late.done]);
    expect(first.events.map((e) => e.type)).toEqual(['SNAPSHOT', 'MIGRATION_APPLIED', 'RUN_FINISHED']);
    expect(second.events.map((e) => e.type)).toEqual(['SNAPSHOT', 'RUN_FINISHED']);
  });

  it('stops taking events for a client that does not read; it later gets the newest ones and RUN_FINISHED', async () => {
    const { runId, globalId } = await createRunningRun();
    const port = new URL(base).port;
    const body = JSON.stringify({
      query: `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type version message } }`,
      variables: { id: globalId },
    });
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    const ended = new Promise<void>((resolve) => socket.on('end', resolve));
    socket.write(
      `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Accept: text/event-stream\r\nAuthorization: Bearer ${BOOTSTRAP_TOKEN}\r\nConnection: close\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await expectEventually(() => expect(text).toContain('SNAPSHOT'));
    // From now on the client reads nothing: 30 MB of events is more than the sockets can buffer.
    socket.pause();
    // A listener on the same bus connection and channel (already subscribed by the stream, so
    // live at once): once it has RUN_FINISHED, so has the stream's queue.
    const probe = api.app.events.subscribeRun(runId);
    // In batches far smaller than the backlog, each given time for several flushes: a stream
    // that kept taking events would lose none of them, one that stops taking must drop the oldest.
    const batch = 500;
    const published = 30 * batch;
    const filler = 'x'.repeat(2000);
    for (let n = 1; n <= published; n++) {
      api.app.events.publish({ ...runEvent(runId, RunEventType.MIGRATION_APPLIED, n), message: filler });
      if (n % batch === 0) {
        for (let got = 0; got < batch; got++) await probe.next();
        // One stream writes every SSE_FLUSH_INTERVAL_MIN_MS: room for several flushes.
        await delay(6 * SSE_FLUSH_INTERVAL_MIN_MS);
      }
    }
    api.app.events.publish(runEvent(runId, RunEventType.RUN_FINISHED, published + 1));
    for (let next = await probe.next(); !next.done; next = await probe.next());
    socket.resume();
    await ended;
    const versions = [...text.matchAll(/"version":"(\d+)"/g)].map((match) => Number(match[1]));
    expect(text).toContain('"type":"RUN_FINISHED"');
    expect(versions.at(-1)).toBe(published + 1);
    // What arrives is in order, and the oldest events were dropped instead of buffered.
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(versions.length).toBeLessThan(published);
    expect(versions.length).toBeGreaterThanOrEqual(SUBSCRIBER_BACKLOG);
  });

  it('answers an unknown run or tenant with NOT_FOUND and ends the stream', async () => {
    const unknownRun = encodeGlobalID('MigrationRun', '00000000-0000-4000-8000-000000000000');
    const unknownTenant = encodeGlobalID('Tenant', '00000000-0000-4000-8000-000000000000');
    for (const [query, id] of [
      [EVENTS, unknownRun],
      [EVENTS, 'not-an-id'],
      [`subscription ($id: ID!) { tenantEvents(tenantId: $id) { type } }`, unknownTenant],
    ] as const) {
      const text = await (await openStream(query, id)).text();
      expect(text).toContain('NOT_FOUND');
      expect(text).not.toContain('"type"');
    }
  });
});

const FANOUT_COUNTERS = [
  'sse_streams',
  'graphql_subscription_event_executions_total',
  'graphql_subscription_shared_results_total',
  'sse_events_total',
  'sse_writes_total',
  'sse_chunks_built_total',
] as const;

/** The fan-out counters of /metrics. */
async function metric(base: string): Promise<Record<(typeof FANOUT_COUNTERS)[number], number>> {
  const text = await (
    await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${BOOTSTRAP_TOKEN}` } })
  ).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+) (\d+)$/.exec(line);
    if (match) values.set(match[1]!, Number(match[2]));
  }
  const counter = (name: string) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`/metrics has no ${name}`);
    return value;
  };
  return Object.fromEntries(FANOUT_COUNTERS.map((name) => [name, counter(name)])) as Record<
    (typeof FANOUT_COUNTERS)[number],
    number
  >;
}
