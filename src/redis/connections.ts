import { Redis } from 'ioredis';

/**
 * A new ioredis connection. BullMQ needs `maxRetriesPerRequest: null` on the connections it
 * blocks on; the same settings suit pub/sub, so every connection of the service is made here.
 */
export function createRedisConnection(redisUrl: string, name: string): Redis {
  return new Redis(redisUrl, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: name,
    lazyConnect: false,
  });
}
