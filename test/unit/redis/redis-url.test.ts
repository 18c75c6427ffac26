import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { ConfigError } from '../../../src/errors.js';
import { queuePrefixOf } from '../../../src/queue/target-queue.js';
import { parseRedisUrl } from '../../../src/redis/redis-url.js';

describe('REDIS_URL', () => {
  it('names one server with redis:// and a cluster by its seed nodes with redis+cluster://', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379/2')).toEqual({
      kind: 'server',
      url: 'redis://127.0.0.1:6379/2',
    });
    expect(parseRedisUrl('redis+cluster://127.0.0.1:7000,127.0.0.1:7001')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
      ],
      tls: false,
    });
    expect(parseRedisUrl('rediss+cluster://app:s%40cret@redis.internal:6380/')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'redis.internal', port: 6380 }],
      username: 'app',
      password: 's@cret',
      tls: true,
    });
  });

  it('refuses a cluster URL without a port, with a bad port or another scheme', () => {
    for (const bad of [
      'redis+cluster://127.0.0.1',
      'redis+cluster://127.0.0.1:70000',
      'redis+cluster://',
      'http+cluster://127.0.0.1:7000',
      'redis+cluster://127.0.0.1:7000/3',
    ])
      expect(parseRedisUrl(bad), bad).toBeNull();
  });

  it('is accepted by loadConfig in both forms and refused with a clear message otherwise', () => {
    expect(loadConfig({ REDIS_URL: 'redis+cluster://127.0.0.1:7000' }).redisUrl).toBe(
      'redis+cluster://127.0.0.1:7000',
    );
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://127.0.0.1' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://127.0.0.1' })).toThrow(/redis\+cluster:\/\//);
  });

  it('keeps all of a queue’s keys in one cluster slot: the BullMQ prefix is a hash tag', () => {
    expect(queuePrefixOf('cp')).toBe('{cp}');
    expect(queuePrefixOf('{cp}')).toBe('{cp}');
    expect(queuePrefixOf('prod:eu')).toBe('{prod:eu}');
  });
});
