import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RedisClient } from '../../../src/redis/connections.js';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisConnection, listChannels } from '../../../src/redis/connections.js';
import { expectEventually } from '../../helpers/eventually.js';
import { useApiHarness } from './harness.js';
import { openWsClient } from './ws-client.js';

const RUN_EVENTS = `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type } }`;
const SUBSCRIPTIONS = 2000;
const HEAP_GROWTH_LIMIT = 50 * 1024 * 1024;

describe('a VIEWER socket asking for thousands of subscriptions, with the default limits', () => {
  // The runs here are rows written by hand: the reconciler must not settle them.
  const api = useApiHarness({ RECONCILE_INTERVAL_MS: '3600000' });
  let wsUrl = '';
  let redis: RedisClient;

  beforeAll(async () => {
    const port = await api.app.listen(0);
    wsUrl = `ws://127.0.0.1:${port}/graphql`;
    redis = createRedisConnection(api.config.redisUrl, 'test-pubsub');
  });
  afterAll(async () => {
    await redis.quit();
  });

  it(`cannot grow the heap by 50 MB with ${SUBSCRIPTIONS} subscriptions and leaves no Redis subscription behind`, async () => {
    const viewer = await api.createToken('VIEWER', 'ws-flood');
    const data = Array.from({ length: SUBSCRIPTIONS }, () => ({
      kind: 'MIGRATE' as const,
      status: 'RUNNING' as const,
      concurrency: 1,
      total: 1,
      pending: 1,
    }));
    const runs = await api.app.db.migrationRun.createManyAndReturn({ data, select: { id: true } });
    const channels = () => listChannels(redis, `${api.config.redisPrefix}:run-events:*`);

    const heapBefore = usedHeap();
    const client = await openWsClient(wsUrl);
    await client.init({ authorization: `Bearer ${viewer}` });
    runs.forEach((run, n) =>
      client.subscribe(String(n), RUN_EVENTS, { id: encodeGlobalID('MigrationRun', run.id) }),
    );
    // Every operation got its answer: a SNAPSHOT, or an error.
    const answered = () => new Set(client.messages.flatMap((m) => (m.id ? [m.id] : []))).size;
    await expectEventually(() => expect(answered()).toBe(SUBSCRIPTIONS), { timeoutMs: 60_000 });
    const live = client.messages.filter((m) => m.type === 'next' && m.payload?.data).length;
    expect(live).toBeGreaterThan(0);
    expect(live).toBeLessThan(SUBSCRIPTIONS);
    const refused = client.messages.find((m) => m.type === 'error');
    expect(JSON.stringify(refused?.payload)).toContain('SUBSCRIPTION_LIMIT');
    expect(usedHeap() - heapBefore).toBeLessThan(HEAP_GROWTH_LIMIT);
    expect(await channels()).toHaveLength(live);

    await client.close();
    await expectEventually(async () => expect(await channels()).toEqual([]));
    expect(usedHeap() - heapBefore).toBeLessThan(HEAP_GROWTH_LIMIT);
  }, 120_000);
});

/** The heap in use after a full collection (the app runs in this process). */
function usedHeap(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}
