import { Cluster, Redis } from 'ioredis';
import { parseRedisUrl } from './redis-url.js';

/** A connection to one Redis server or to a Redis Cluster; BullMQ and the event bus take either. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /**
   * Send the commands of one event-loop turn as one pipeline. Only for connections that issue
   * plain commands (publishing, adding jobs): never for a subscriber or BullMQ's Worker connection,
   * whose blocking commands and duplicates must not share a pipeline.
   */
  readonly autoPipelining?: boolean;
}

/**
 * A new ioredis connection, or a Cluster client when REDIS_URL is a `redis+cluster://` URL.
 * BullMQ needs `maxRetriesPerRequest: null` on the connections it blocks on (on a Cluster, in
 * its per-node `redisOptions`); the same settings suit pub/sub, so every connection of the
 * service is made here.
 */
export function createRedisConnection(
  redisUrl: string,
  name: string,
  options: RedisConnectionOptions = {},
): RedisClient {
  const target = parseRedisUrl(redisUrl);
  if (!target) throw new TypeError('REDIS_URL is neither a redis:// nor a redis+cluster:// URL');
  const common = {
    maxRetriesPerRequest: null,
    connectionName: name,
  };
  if (target.kind === 'server') {
    return new Redis(target.url, {
      ...common,
      enableAutoPipelining: options.autoPipelining ?? false,
      enableReadyCheck: true,
      lazyConnect: false,
    });
  }
  return new Cluster(
    target.nodes.map((node) => ({ host: node.host, port: node.port })),
    {
      enableAutoPipelining: options.autoPipelining ?? false,
      enableReadyCheck: true,
      lazyConnect: false,
      redisOptions: {
        ...common,
        ...(target.username ? { username: target.username } : {}),
        ...(target.password !== undefined ? { password: target.password } : {}),
        ...(target.tls ? { tls: {} } : {}),
      },
    },
  );
}

/** True when `client` talks to a Redis Cluster. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/**
 * Every key matching `pattern`, on every master of a cluster (SCAN visits one node only).
 * For housekeeping and tests, not for a hot path.
 */
export async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const nodes = isCluster(client) ? client.nodes('master') : [client];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...found);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}

/** Deletes every key matching `pattern` (one DEL per key, so keys of different slots are fine). */
export async function deleteKeys(client: RedisClient, pattern: string): Promise<number> {
  const keys = await scanKeys(client, pattern);
  await Promise.all(keys.map((key) => client.del(key)));
  return keys.length;
}

/**
 * How many connections are subscribed to `channel`. On a cluster each node answers PUBSUB NUMSUB
 * for its own clients only (a PUBLISH reaches every node), so the masters' answers are summed.
 */
export async function countSubscribers(client: RedisClient, channel: string): Promise<number> {
  const nodes = isCluster(client) ? client.nodes('master') : [client];
  let count = 0;
  for (const node of nodes) {
    const answer = (await node.pubsub('NUMSUB', channel)) as [string, number | string];
    count += Number(answer[1]);
  }
  return count;
}

/** What the event buses need to publish. */
export interface Publisher {
  publish(channel: string, message: string): Promise<number>;
}

/**
 * Publishes through `client`, in order. A cluster client sends a PUBLISH (it has no key) to any
 * node, and two messages that left through different nodes can reach a subscriber in either order
 * (each node forwards over its own cluster-bus links); so on a cluster every PUBLISH goes through
 * one master, the first by address, and reaches every other node over the same link, in order.
 * Only a change of masters (failover) can reorder messages sent across it.
 */
export function createPublisher(client: RedisClient): Publisher {
  if (!isCluster(client)) return { publish: (channel, message) => client.publish(channel, message) };
  return {
    publish(channel, message) {
      const masters = client.nodes('master');
      if (masters.length === 0) return client.publish(channel, message);
      const pinned = masters.reduce((first, node) => (nodeAddress(node) < nodeAddress(first) ? node : first));
      return pinned.publish(channel, message);
    },
  };
}

function nodeAddress(node: Redis): string {
  return `${node.options.host ?? ''}:${String(node.options.port ?? '').padStart(5, '0')}`;
}

/** Channels matching `pattern` that some connection subscribes to, on every master of a cluster. */
export async function listChannels(client: RedisClient, pattern: string): Promise<string[]> {
  const nodes = isCluster(client) ? client.nodes('master') : [client];
  const channels = new Set<string>();
  for (const node of nodes)
    for (const channel of (await node.pubsub('CHANNELS', pattern)) as string[]) channels.add(channel);
  return [...channels];
}

/**
 * Brings a connection that will subscribe to ready before anything subscribes on it. A SUBSCRIBE
 * written while a connection is between TCP connect and ioredis's ready check (INFO) puts it in
 * subscriber mode, the check fails and the connection is dropped with its subscriptions: a plain
 * connection is readied by a PING; a cluster client subscribes on a lazily opened connection of
 * its own, which a first SUBSCRIBE (queued until that connection is ready) opens safely.
 */
export async function prepareSubscriber(client: RedisClient, readyChannel: string): Promise<void> {
  await subscriptionsLive(client, readyChannel);
}

/**
 * Resolves once every SUBSCRIBE sent on `client` so far is live. Commands on one connection run
 * in order, so a PING answered means the SUBSCRIBEs before it are done; a cluster client sends
 * SUBSCRIBE on a subscriber connection of its own and PING to a node, so there a SUBSCRIBE to
 * `readyChannel` (one nothing publishes on) is what comes back in order.
 */
export async function subscriptionsLive(client: RedisClient, readyChannel: string): Promise<void> {
  if (isCluster(client)) await client.subscribe(readyChannel);
  else await client.ping();
}
