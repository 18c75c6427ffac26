import { Redis } from 'ioredis';

export interface RedisConnectionOptions {
  /**
   * Send the commands of one event-loop turn as one pipeline. Only for connections that issue
   * plain commands (publishing, adding jobs): never for a subscriber or BullMQ's Worker connection,
   * whose blocking commands and duplicates must not share a pipeline.
   */
  readonly autoPipelining?: boolean;
}

/**
 * A new ioredis connection. BullMQ needs `maxRetriesPerRequest: null` on the connections it
 * blocks on; the same settings suit pub/sub, so every connection of the service is made here.
 */
export function createRedisConnection(
  redisUrl: string,
  name: string,
  options: RedisConnectionOptions = {},
): Redis {
  return new Redis(redisUrl, {
    enableAutoPipelining: options.autoPipelining ?? false,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: name,
    lazyConnect: false,
  });
}
