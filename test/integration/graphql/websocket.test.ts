import { encodeGlobalID } from '@pothos/plugin-relay';
import type { RedisClient } from '../../../src/redis/connections.js';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisConnection, listChannels } from '../../../src/redis/connections.js';
import { expectEventually } from '../../helpers/eventually.js';
import { BOOTSTRAP_TOKEN, useApiHarness } from './harness.js';
import { openWsClient, type WsTestClient } from './ws-client.js';

const RUN_EVENTS = `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type progress { total succeeded } } }`;
const PAYLOAD_LIMIT = 64 * 1024;

describe('GraphQL over WebSocket', () => {
  // The runs here are rows written by hand: the reconciler must not settle them.
  const api = useApiHarness({
    RECONCILE_INTERVAL_MS: '3600000',
    WS_MAX_PAYLOAD_BYTES: String(PAYLOAD_LIMIT),
    SUBSCRIPTIONS_PER_SOCKET: '5',
    SUBSCRIPTIONS_PER_TOKEN: '8',
    SUBSCRIPTIONS_PER_PROCESS: '12',
  });
  let base = '';
  let wsUrl = '';
  let redis: RedisClient;
  const clients: WsTestClient[] = [];

  beforeAll(async () => {
    const port = await api.app.listen(0);
    base = `http://127.0.0.1:${port}`;
    wsUrl = `ws://127.0.0.1:${port}/graphql`;
    redis = createRedisConnection(api.config.redisUrl, 'test-pubsub');
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
    vi.restoreAllMocks();
  });
  afterAll(async () => {
    await redis.quit();
  });

  async function connect(token: string | null): Promise<WsTestClient> {
    const client = await openWsClient(wsUrl);
    clients.push(client);
    if (token !== null) await client.init({ authorization: `Bearer ${token}` });
    return client;
  }

  async function runningRun(): Promise<string> {
    const run = await api.app.db.migrationRun.create({
      data: { kind: 'MIGRATE', status: 'RUNNING', concurrency: 1, total: 3, pending: 3 },
    });
    return encodeGlobalID('MigrationRun', run.id);
  }

  /** Channels of run topics this process's API is subscribed to in Redis. */
  async function runChannels(): Promise<string[]> {
    return listChannels(redis, `${api.config.redisPrefix}:run-events:*`);
  }

  function firstOf(client: WsTestClient, id: string) {
    return client.messagesOf(id)[0];
  }

  it('refuses connection_init without a valid token with 4403, and acknowledges a valid one', async () => {
    for (const payload of [{}, { authorization: 'Bearer cpt_not-a-real-token' }]) {
      const client = await connect(null);
      await expect(client.init(payload)).rejects.toThrow(/4403/);
      expect((await client.closed).code).toBe(4403);
      expect(client.messages.map((m) => m.type)).not.toContain('connection_ack');
    }
    const viewer = await api.createToken('VIEWER', 'ws-init-viewer');
    const client = await connect(viewer);
    expect(client.messages.map((m) => m.type)).toEqual(['connection_ack']);
  });

  it('closes the socket on a frame above WS_MAX_PAYLOAD_BYTES without executing it', async () => {
    const client = await connect(BOOTSTRAP_TOKEN);
    const padding = ' '.repeat(2 * PAYLOAD_LIMIT);
    client.subscribe('big', `query {${padding}__typename }`);
    await expectEventually(() => expect(client.closeCode).toBe(1009));
    expect(client.messagesOf('big')).toEqual([]);
  });

  it('answers a syntax error in one subscribe with an error for that operation only, printing no stack', async () => {
    const stderr = vi.spyOn(process.stderr, 'write');
    const consoleError = vi.spyOn(console, 'error');
    const client = await connect(BOOTSTRAP_TOKEN);
    client.subscribe('bad', 'subscription { migrationRunEvents(');
    await expectEventually(() => expect(firstOf(client, 'bad')?.type).toBe('error'));
    expect(JSON.stringify(firstOf(client, 'bad')?.payload)).toContain('Syntax Error');
    // The socket is still open and serves the next operation.
    client.subscribe('good', RUN_EVENTS, { id: await runningRun() });
    await expectEventually(() =>
      expect(firstOf(client, 'good')?.payload?.data?.migrationRunEvents?.type).toBe('SNAPSHOT'),
    );
    expect(client.socket.readyState).toBe(client.socket.OPEN);
    expect(consoleError).not.toHaveBeenCalled();
    const written = stderr.mock.calls.map((call) => String(call[0])).join('');
    expect(written).not.toMatch(/\n\s+at /);
  });

  it('ends every subscription of a closed socket, on quiet topics too, and releases their Redis channels', async () => {
    const viewer = await api.createToken('VIEWER', 'ws-cleanup-viewer');
    const client = await connect(viewer);
    const ids = await Promise.all(Array.from({ length: 5 }, () => runningRun()));
    ids.forEach((id, n) => client.subscribe(String(n), RUN_EVENTS, { id }));
    await expectEventually(() =>
      expect(client.messages.filter((m) => m.type === 'next')).toHaveLength(ids.length),
    );
    expect(await runChannels()).toHaveLength(ids.length);

    await client.close();
    await expectEventually(async () => expect(await runChannels()).toEqual([]));
  });

  it('caps subscriptions per socket, per token and per process with SUBSCRIPTION_LIMIT, keeping the socket', async () => {
    const run = await runningRun();
    const [first, second] = [
      await api.createToken('VIEWER', 'ws-limit-1'),
      await api.createToken('VIEWER', 'ws-limit-2'),
    ];
    const outcome = (client: WsTestClient, id: string) => {
      const message = firstOf(client, id);
      if (message?.type === 'next' && message.payload.data) return 'ok';
      const errors = (message?.type === 'error' ? message.payload : message?.payload?.errors) as
        { extensions?: { code?: string } }[] | undefined;
      return errors?.[0]?.extensions?.code ?? message?.type;
    };
    const subscribeAll = async (client: WsTestClient, count: number) => {
      const ids = Array.from({ length: count }, (_, n) => `s${n}`);
      for (const id of ids) client.subscribe(id, RUN_EVENTS, { id: run });
      return expectEventually(() => {
        const outcomes = ids.map((id) => outcome(client, id));
        expect(outcomes).not.toContain(undefined);
        return outcomes;
      });
    };

    // Per socket: 5.
    const a = await connect(first);
    expect(await subscribeAll(a, 6)).toEqual([...Array(5).fill('ok'), 'SUBSCRIPTION_LIMIT']);
    expect(a.socket.readyState).toBe(a.socket.OPEN);
    // Per token: 8, across sockets and over SSE too.
    const b = await connect(first);
    expect(await subscribeAll(b, 4)).toEqual([...Array(3).fill('ok'), 'SUBSCRIPTION_LIMIT']);
    const sse = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${first}`,
      },
      body: JSON.stringify({ query: RUN_EVENTS, variables: { id: run } }),
    });
    const sseText = await sse.text();
    expect(sseText).toContain('SUBSCRIPTION_LIMIT');
    expect(sseText).not.toContain('SNAPSHOT');
    // Per process: 12.
    const c = await connect(second);
    expect(await subscribeAll(c, 5)).toEqual([...Array(4).fill('ok'), 'SUBSCRIPTION_LIMIT']);

    // A closed socket gives its slots back.
    await a.close();
    c.subscribe('again', RUN_EVENTS, { id: run });
    await expectEventually(() => expect(outcome(c, 'again')).toBe('ok'));
  });

  it('sends SNAPSHOT then RUN_FINISHED for a run that had already ended, then completes (WS and SSE)', async () => {
    const ended = await api.app.db.migrationRun.create({
      data: {
        kind: 'MIGRATE',
        status: 'SUCCEEDED',
        concurrency: 1,
        total: 2,
        succeeded: 2,
        startedAt: new Date(),
        finishedAt: new Date(),
      },
    });
    const id = encodeGlobalID('MigrationRun', ended.id);

    const client = await connect(BOOTSTRAP_TOKEN);
    client.subscribe('ended', RUN_EVENTS, { id });
    await expectEventually(() => expect(client.messagesOf('ended').at(-1)?.type).toBe('complete'));
    expect(
      client.messagesOf('ended').map((m) => m.payload?.data?.migrationRunEvents?.type ?? m.type),
    ).toEqual(['SNAPSHOT', 'RUN_FINISHED', 'complete']);
    expect(firstOf(client, 'ended')?.payload.data.migrationRunEvents.progress).toEqual({
      total: 2,
      succeeded: 2,
    });

    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${BOOTSTRAP_TOKEN}`,
      },
      body: JSON.stringify({ query: RUN_EVENTS, variables: { id } }),
    });
    const text = await response.text();
    const types = [...text.matchAll(/"type":"([A-Z_]+)"/g)].map((match) => match[1]);
    expect(types).toEqual(['SNAPSHOT', 'RUN_FINISHED']);
    expect(text.trimEnd().endsWith('event: complete\ndata:')).toBe(true);
  });
});
