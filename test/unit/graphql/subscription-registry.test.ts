import { describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/auth/principal.js';
import { loadConfig } from '../../../src/config.js';
import { createSubscriptionRegistry } from '../../../src/graphql/subscription-registry.js';

const token = (tokenId: string): Principal => ({ kind: 'api-token', name: tokenId, role: 'VIEWER', tokenId });
const bootstrap: Principal = { kind: 'bootstrap', name: 'bootstrap-admin', role: 'ADMIN', tokenId: null };

function limitOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return (error as { extensions?: unknown }).extensions;
  }
  throw new Error('expected a SUBSCRIPTION_LIMIT error');
}

describe('createSubscriptionRegistry', () => {
  it('has safe defaults in config', () => {
    expect(loadConfig({})).toMatchObject({
      wsMaxPayloadBytes: 1024 * 1024,
      subscriptionsPerSocket: 100,
      subscriptionsPerToken: 1000,
      subscriptionsPerProcess: 10_000,
      streamRecheckIntervalMs: 60_000,
    });
  });

  it('refuses past the per-token and per-process limits and gives slots back on release', () => {
    const registry = createSubscriptionRegistry({ subscriptionsPerToken: 2, subscriptionsPerProcess: 3 });
    const noop = () => undefined;
    const first = registry.acquire(token('a'), noop);
    registry.acquire(token('a'), noop);
    expect(limitOf(() => registry.acquire(token('a'), noop))).toEqual({
      code: 'SUBSCRIPTION_LIMIT',
      scope: 'TOKEN',
      limit: 2,
    });
    registry.acquire(bootstrap, noop);
    expect(limitOf(() => registry.acquire(token('b'), noop))).toMatchObject({ scope: 'PROCESS' });
    first.release();
    first.release();
    expect(registry.size).toBe(2);
    registry.acquire(token('b'), noop);
    expect(registry.openTokenIds().sort()).toEqual(['a', 'b']);
  });

  it('ends only the revoked token subscriptions', () => {
    const registry = createSubscriptionRegistry({ subscriptionsPerToken: 5, subscriptionsPerProcess: 5 });
    const ended: string[] = [];
    registry.acquire(token('a'), () => ended.push('a1'));
    registry.acquire(token('a'), () => ended.push('a2'));
    registry.acquire(token('b'), () => ended.push('b1'));
    expect(registry.revokeToken('a')).toBe(2);
    expect(ended).toEqual(['a1', 'a2']);
    expect(registry.revokeToken('unknown')).toBe(0);
  });
});
