import { createPublisher, type RedisClient } from '../redis/connections.js';

export interface TokenRevocationBusDeps {
  /** A connection used only to publish. */
  readonly publishClient: RedisClient;
  /** A connection dedicated to SUBSCRIBE (shared with the run event bus). */
  readonly subscribeClient: RedisClient;
  /** REDIS_PREFIX: channels ignore the Redis database number. */
  readonly prefix: string;
}

/**
 * Token revocations over Redis pub/sub: the API process that revokes a token publishes its id,
 * and every API process ends that token's open streams and forgets its cached lookup. Pub/sub
 * delivers only to processes connected at the time; each process's periodic re-check of the
 * tokens of its open streams is the backstop.
 */
export function createTokenRevocationBus({ publishClient, subscribeClient, prefix }: TokenRevocationBusDeps) {
  const channel = `${prefix}:token-revocations`;
  const publisher = createPublisher(publishClient);
  const listeners = new Set<(tokenId: string) => void>();
  let subscribed = false;

  subscribeClient.on('message', (from: string, tokenId: string) => {
    if (from !== channel) return;
    for (const listener of listeners) listener(tokenId);
  });

  /** Tells every API process that token `tokenId` was revoked. */
  async function publish(tokenId: string): Promise<void> {
    await publisher.publish(channel, tokenId);
  }

  /** Calls `listener` with the id of each token revoked from now on, in any process; resolves once live. */
  async function onRevoked(listener: (tokenId: string) => void): Promise<void> {
    listeners.add(listener);
    if (subscribed) return;
    subscribed = true;
    await subscribeClient.subscribe(channel);
  }

  return { publish, onRevoked };
}
export type TokenRevocationBus = ReturnType<typeof createTokenRevocationBus>;
