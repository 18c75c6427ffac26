import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import { createLogger } from '../../../src/logger.js';
import { RunEventType } from '../../../src/pubsub/run-events.js';
import { expectEventually } from '../../helpers/eventually.js';
import { useApiHarness } from './harness.js';
import { openWsClient, type WsTestClient } from './ws-client.js';

const RUN_EVENTS = `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type } }`;

interface OpenStream {
  /** Everything received so far. */
  text(): string;
  /** True once the server ended the stream. */
  ended(): boolean;
  cancel(): Promise<void>;
}

describe('revoking a token ends its open streams', () => {
  // Process A: the harness's app, where tokens are revoked. The runs here are rows written by
  // hand, so the reconciler must not settle them; neither process re-checks tokens on its own
  // during these tests unless the test says so.
  const api = useApiHarness({
    RECONCILE_INTERVAL_MS: '3600000',
    STREAM_RECHECK_INTERVAL_MS: '3600000',
  });
  const apps: App[] = [];
  const streams: OpenStream[] = [];
  const sockets: WsTestClient[] = [];
  let baseA = '';

  beforeAll(async () => {
    baseA = `http://127.0.0.1:${await api.app.listen(0)}`;
  });
  afterEach(async () => {
    for (const stream of streams.splice(0)) await stream.cancel();
    for (const socket of sockets.splice(0)) await socket.close();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  /** Another API process on the same control-plane DB and Redis prefix. */
  async function startApiProcess(overrides: { streamRecheckIntervalMs?: number } = {}) {
    const app = await createApp(
      { ...api.config, ...overrides },
      { roles: { api: true, worker: false }, logger: createLogger('silent') },
    );
    apps.push(app);
    return { app, base: `http://127.0.0.1:${await app.listen(0)}` };
  }

  /** A VIEWER token and its global id. */
  async function tokenWithId(name: string): Promise<{ token: string; id: string }> {
    const result = await api.gql<{ createApiToken: { token: string; apiToken: { id: string } } }>(
      `mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) {
        ... on CreateApiTokenSuccess { token apiToken { id } } } }`,
      { input: { name, role: 'VIEWER' } },
    );
    const created = result.data!.createApiToken;
    return { token: created.token, id: created.apiToken.id };
  }

  async function runningRun(): Promise<{ runId: string; globalId: string }> {
    const run = await api.app.db.migrationRun.create({
      data: { kind: 'MIGRATE', status: 'RUNNING', concurrency: 1, total: 3, pending: 3 },
    });
    return { runId: run.id, globalId: encodeGlobalID('MigrationRun', run.id) };
  }

  async function openSse(base: string, token: string, runId: string): Promise<OpenStream> {
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query: RUN_EVENTS, variables: { id: runId } }),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let ended = false;
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += decoder.decode(value, { stream: true });
        }
      } catch {
        // Cancelled by the test.
      }
      ended = true;
    })();
    const stream = { text: () => text, ended: () => ended, cancel: () => reader.cancel() };
    streams.push(stream);
    return stream;
  }

  async function openWs(base: string, token: string, runId: string): Promise<WsTestClient> {
    const client = await openWsClient(`${base.replace('http', 'ws')}/graphql`);
    sockets.push(client);
    await client.init({ authorization: `Bearer ${token}` });
    client.subscribe('run', RUN_EVENTS, { id: runId });
    return client;
  }

  const revoke = (id: string) =>
    api.gql(`mutation ($id: ID!) { revokeApiToken(input: { id: $id }) { __typename } }`, { id });

  it('in every API process: SSE streams end with UNAUTHENTICATED, sockets close with 4403, other tokens keep theirs', async () => {
    const other = await startApiProcess();
    const revoked = await tokenWithId('revoked-viewer');
    const kept = await tokenWithId('kept-viewer');
    const { runId, globalId } = await runningRun();

    const sseOnA = await openSse(baseA, revoked.token, globalId);
    const sseOnB = await openSse(other.base, revoked.token, globalId);
    const wsOnB = await openWs(other.base, revoked.token, globalId);
    const keptOnB = await openSse(other.base, kept.token, globalId);
    await expectEventually(() => {
      for (const stream of [sseOnA, sseOnB, keptOnB]) expect(stream.text()).toContain('SNAPSHOT');
      expect(JSON.stringify(wsOnB.messagesOf('run'))).toContain('SNAPSHOT');
    });

    expect((await revoke(revoked.id)).data?.revokeApiToken.__typename).toBe('RevokeApiTokenSuccess');

    await expectEventually(() => {
      for (const stream of [sseOnA, sseOnB]) {
        expect(stream.ended()).toBe(true);
        expect(stream.text()).toContain('UNAUTHENTICATED');
        expect(stream.text()).toContain('event: complete');
      }
      expect(wsOnB.closeCode).toBe(4403);
    });
    // The other process forgot its cached lookup too: the token fails there at once.
    const again = await fetch(`${other.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${revoked.token}` },
      body: JSON.stringify({ query: '{ viewer { name } }' }),
    });
    expect(await again.text()).toContain('UNAUTHENTICATED');

    // The other token's stream is still live.
    api.app.events.publish({
      type: RunEventType.MIGRATION_APPLIED,
      at: new Date().toISOString(),
      runId,
      runStatus: 'RUNNING',
      progress: { total: 3, pending: 3, running: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0 },
    });
    await expectEventually(() => expect(keptOnB.text()).toContain('MIGRATION_APPLIED'));
    expect(keptOnB.ended()).toBe(false);
  });

  it('ends the streams of a token revoked without an announcement at the next re-check', async () => {
    const rechecking = await startApiProcess({ streamRecheckIntervalMs: 200 });
    const revoked = await tokenWithId('quietly-revoked-viewer');
    const { globalId } = await runningRun();
    const sse = await openSse(rechecking.base, revoked.token, globalId);
    const ws = await openWs(rechecking.base, revoked.token, globalId);
    await expectEventually(() => {
      expect(sse.text()).toContain('SNAPSHOT');
      expect(JSON.stringify(ws.messagesOf('run'))).toContain('SNAPSHOT');
    });

    // As if the announcement was lost: the row alone says the token is revoked.
    await api.app.db.apiToken.update({
      where: { id: decodeGlobalID(revoked.id).id },
      data: { revokedAt: new Date() },
    });

    await expectEventually(() => {
      expect(sse.ended()).toBe(true);
      expect(sse.text()).toContain('UNAUTHENTICATED');
      expect(ws.closeCode).toBe(4403);
    });
  });
});
