/**
 * The subscriptions (SSE and WebSocket) open in this API process, by token: what caps them and
 * what ends them when their token is revoked.
 */
import { GraphQLError } from 'graphql';
import type { Principal } from '../auth/principal.js';
import type { Config } from '../config.js';

/** `extensions.code` of the error a caller gets past a subscription limit. */
export const SUBSCRIPTION_LIMIT_CODE = 'SUBSCRIPTION_LIMIT';

export const SubscriptionLimitScope = {
  SOCKET: 'SOCKET',
  TOKEN: 'TOKEN',
  PROCESS: 'PROCESS',
} as const;
export type SubscriptionLimitScope = (typeof SubscriptionLimitScope)[keyof typeof SubscriptionLimitScope];

/** The GraphQL error for a subscription refused by the limit of `scope`. */
export function subscriptionLimitError(scope: SubscriptionLimitScope, limit: number): GraphQLError {
  const where = {
    SOCKET: 'on this WebSocket',
    TOKEN: 'with this token',
    PROCESS: 'on this server',
  }[scope];
  return new GraphQLError(`Too many subscriptions open ${where} (limit ${limit}); close one first`, {
    extensions: { code: SUBSCRIPTION_LIMIT_CODE, scope, limit },
  });
}

/** A slot held by one open subscription. */
export interface SubscriptionLease {
  /** Gives the slot back; later calls do nothing. */
  release(): void;
}

export type SubscriptionRegistryDeps = Pick<Config, 'subscriptionsPerToken' | 'subscriptionsPerProcess'>;

interface OpenSubscription {
  readonly tokenId: string | null;
  /** Ends the subscription because its token was revoked. */
  readonly revoke: () => void;
}

/** Counts open subscriptions per token and per process, and ends a revoked token's. */
export function createSubscriptionRegistry({
  subscriptionsPerToken,
  subscriptionsPerProcess,
}: SubscriptionRegistryDeps) {
  const open = new Set<OpenSubscription>();
  // By token id, or by principal kind for the bootstrap token and AUTH_DISABLED.
  const perToken = new Map<string, Set<OpenSubscription>>();

  /**
   * Takes a slot for a subscription of `principal`, or throws the SUBSCRIPTION_LIMIT error.
   * `revoke` is called if the principal's token is revoked while the subscription is open.
   */
  function acquire(principal: Principal, revoke: () => void): SubscriptionLease {
    const key = principal.tokenId ?? principal.kind;
    const ofToken = perToken.get(key) ?? new Set<OpenSubscription>();
    if (ofToken.size >= subscriptionsPerToken) {
      throw subscriptionLimitError(SubscriptionLimitScope.TOKEN, subscriptionsPerToken);
    }
    if (open.size >= subscriptionsPerProcess) {
      throw subscriptionLimitError(SubscriptionLimitScope.PROCESS, subscriptionsPerProcess);
    }
    const entry: OpenSubscription = { tokenId: principal.tokenId, revoke };
    open.add(entry);
    ofToken.add(entry);
    perToken.set(key, ofToken);
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        open.delete(entry);
        ofToken.delete(entry);
        if (ofToken.size === 0 && perToken.get(key) === ofToken) perToken.delete(key);
      },
    };
  }

  /** Ends every open subscription of the token `tokenId`; returns how many. */
  function revokeToken(tokenId: string): number {
    const ofToken = perToken.get(tokenId);
    if (!ofToken) return 0;
    const entries = [...ofToken];
    for (const entry of entries) entry.revoke();
    return entries.length;
  }

  /** Ids of the tokens that have subscriptions open now. */
  function openTokenIds(): string[] {
    const ids = new Set<string>();
    for (const entry of open) if (entry.tokenId) ids.add(entry.tokenId);
    return [...ids];
  }

  return {
    acquire,
    revokeToken,
    openTokenIds,
    /** Subscriptions open now. */
    get size() {
      return open.size;
    },
  };
}
export type SubscriptionRegistry = ReturnType<typeof createSubscriptionRegistry>;
