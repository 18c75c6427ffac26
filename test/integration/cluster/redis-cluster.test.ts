/**
 * The service on a Redis Cluster (REDIS_URL=redis+cluster://...): BullMQ's keys under a hash-tagged
 * prefix, workers taking jobs, and run events over pub/sub heard on any node. CI starts a local
 * three-master cluster on 7000-7002 (.ci/run); without one these tests are skipped, saying so.
 */
import { randomUUID } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunEventBus, RunEventType, type RunEvent } from '../../../src/pubsub/run-events.js';
import { queuePrefixOf } from '../../../src/queue/target-queue.js';
import {
  countSubscribers,
  createRedisConnection,
  isCluster,
  scanKeys,
  type RedisClient,
} from '../../../src/redis/connections.js';
import { expectEventually } from '../../helpers/eventually.js';
import { BOOTSTRAP_TOKEN, useApiHarness } from '../graphql/harness.js';
import { waitForRunEnd } from '../runs/run-assertions.js';

const CLUSTER_URL =
  process.env.REDIS_CLUSTER_URL ?? 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002';
const NODE_PORTS = [7000, 7001, 7002];

const clusterUp = await isClusterUp();
if (!clusterUp)
  console.warn(
    `redis-cluster.test.ts skipped: no Redis Cluster answers on 127.0.0.1:${NODE_PORTS.join(',')} ` +
      '(.ci/run starts one; see README "Redis Cluster")',
  );

describe.skipIf(!clusterUp)('the control plane on a Redis Cluster', () => {
  const api = useApiHarness({ REDIS_URL: CLUSTER_URL });
  let base = '';

  beforeAll(async () => {
    base = `http://127.0.0.1:${await api.app.listen(0)}`;
  });

  async function createTenant(name: string): Promise<string> {
    const created = await api.gql(
      `mutation ($name: String!) { createTenant(input: { name: $name }) {
        __typename ... on CreateTenantSuccess { tenant { tenantId } provisioning { id } } } }`,
      { name: api.tenantName(name) },
    );
    expect(created.data?.createTenant.__typename).toBe('CreateTenantSuccess');
    const id = created.data?.createTenant.provisioning.id as string;
    return Buffer.from(id, 'base64').toString('utf8').split(':')[1] as string;
  }

  it('provisions tenants and rolls a run out through BullMQ on the cluster, with its events over SSE', async () => {
    const provisioning = await Promise.all(['cl-a', 'cl-b', 'cl-c'].map(createTenant));
    for (const runId of provisioning)
      expect((await waitForRunEnd(api.app.db, runId)).status).toBe('SUCCEEDED');

    // Held until the stream is open, so the run's live events cannot all pass before it.
    const worker = api.app.worker!.worker;
    await worker.pause();
    const started = await api.gql(
      `mutation { startRollback(input: { targetVersion: "0002" }) {
        __typename ... on StartRollbackSuccess { run { id } } ... on Error { message } } }`,
    );
    expect(started.data?.startRollback.__typename).toBe('StartRollbackSuccess');
    const runGlobalId = started.data?.startRollback.run.id as string;
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${BOOTSTRAP_TOKEN}`,
      },
      body: JSON.stringify({
        query: `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type progress { total succeeded failed } } }`,
        variables: { id: runGlobalId },
      }),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const read = async () => {
      const { value, done } = await reader.read();
      if (!done) text += decoder.decode(value, { stream: true });
      return done;
    };
    while (!text.includes('SNAPSHOT')) if (await read()) break;
    expect(text).toContain('SNAPSHOT');
    worker.resume();
    while (!(await read()));

    const events = text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map(
        (line) =>
          JSON.parse(line.slice(6)) as {
            data: { migrationRunEvents: { type: string; progress: { total: number; succeeded: number } } };
          },
      )
      .map((message) => message.data.migrationRunEvents);
    const types = events.map((event) => event.type);
    expect(types[0]).toBe('SNAPSHOT');
    expect(types.at(-1)).toBe('RUN_FINISHED');
    expect(types.filter((type) => type === 'TARGET_SUCCEEDED')).toHaveLength(3);
    expect(types).toContain('MIGRATION_APPLIED');
    expect(events.at(-1)?.progress).toMatchObject({ total: 3, succeeded: 3 });

    const versions = await api.app.db.tenantDatabase.findMany({ select: { schemaVersion: true } });
    expect(versions.map((row) => row.schemaVersion)).toEqual(['0002', '0002', '0002']);
  });

  it('keeps every BullMQ key of the deployment in one cluster slot', async () => {
    const redis = createRedisConnection(CLUSTER_URL, 'test-cluster-slots');
    try {
      expect(isCluster(redis)).toBe(true);
      const prefix = queuePrefixOf(api.config.redisPrefix);
      await expectEventually(async () =>
        expect((await scanKeys(redis, `${prefix}*`)).length).toBeGreaterThan(0),
      );
      const keys = await scanKeys(redis, `${prefix}*`);
      const slots = new Set(
        await Promise.all(keys.map((key) => (redis as Redis).cluster('KEYSLOT', key) as Promise<number>)),
      );
      expect(slots.size).toBe(1);
    } finally {
      await redis.quit();
    }
  });
});

describe.skipIf(!clusterUp)('run events on a Redis Cluster', () => {
  const prefix = `t-${randomUUID()}`;
  const clients: Redis[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.quit()));
  });

  it('reach a subscriber connected to another node than the publisher', async () => {
    // Plain connections pinned to different masters: the broadcast, not routing, delivers.
    const [publishClient, subscribeClient, unusedSubscribe, inspect] = [7000, 7002, 7001, 7002].map(
      (port) => {
        const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null });
        clients.push(client);
        return client;
      },
    ) as [Redis, Redis, Redis, Redis];
    const publisher = createRunEventBus({ publishClient, subscribeClient: unusedSubscribe, prefix });
    const listener = createRunEventBus({ publishClient: inspect, subscribeClient, prefix });
    const runId = randomUUID();
    const channel = `${prefix}:run-events:${runId}`;
    const events = listener.subscribeRun(runId);
    await expectEventually(async () => {
      // NUMSUB answers for its own node only: the subscriber is on 7002, the publisher on 7000.
      const [, remote] = (await inspect.pubsub('NUMSUB', channel)) as [string, number];
      expect(Number(remote)).toBe(1);
    });
    const [, local] = (await publishClient.pubsub('NUMSUB', channel)) as [string, number];
    expect(Number(local)).toBe(0);
    const event: RunEvent = {
      type: RunEventType.RUN_FINISHED,
      at: new Date().toISOString(),
      runId,
      runStatus: 'SUCCEEDED',
      progress: { total: 1, pending: 0, running: 0, succeeded: 1, failed: 0, skipped: 0, cancelled: 0 },
    };
    publisher.publish(event);
    const received = await events.next();
    expect(received.value).toEqual(event);
  });
});

describe.skipIf(!clusterUp)('run events published through a cluster client', () => {
  const prefix = `t-${randomUUID()}`;
  const clients: RedisClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.quit()));
  });

  it('reach a subscriber in the order one process published them', async () => {
    const [publishClient, subscribeClient] = ['test-publish', 'test-subscribe'].map((name) => {
      const client = createRedisConnection(CLUSTER_URL, name, { autoPipelining: name === 'test-publish' });
      clients.push(client);
      return client;
    }) as [RedisClient, RedisClient];
    await Promise.all([publishClient.ping(), subscribeClient.ping()]);
    const bus = createRunEventBus({ publishClient, subscribeClient, prefix });
    const runId = randomUUID();
    const events = bus.subscribeRun(runId);
    await expectEventually(async () =>
      expect(await countSubscribers(publishClient, `${prefix}:run-events:${runId}`)).toBe(1),
    );
    const count = 300;
    // One event per event-loop turn, as a worker publishes them: an auto-pipeline batch per
    // event, so nothing but the publisher keeps them on one node.
    for (let n = 1; n <= count; n++) {
      await setImmediate();
      bus.publish({
        type: n === count ? RunEventType.RUN_FINISHED : RunEventType.MIGRATION_APPLIED,
        at: new Date().toISOString(),
        runId,
        runStatus: 'RUNNING',
        progress: { total: count, pending: 0, running: 0, succeeded: n, failed: 0, skipped: 0, cancelled: 0 },
        version: String(n),
      });
    }
    const received: string[] = [];
    for await (const event of events) received.push(event.version ?? '');
    expect(received).toEqual(Array.from({ length: count }, (_, i) => String(i + 1)));
  });
});

async function isClusterUp(): Promise<boolean> {
  const probe = new Redis({
    host: '127.0.0.1',
    port: NODE_PORTS[0],
    lazyConnect: true,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    const info = (await probe.cluster('INFO')) as string;
    return info.includes('cluster_state:ok');
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
