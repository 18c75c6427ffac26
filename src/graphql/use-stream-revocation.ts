/**
 * Ending the open streams (SSE and WebSocket) of a revoked token in this API process: at once
 * when any process announces the revocation on the event bus, and, as a backstop for an
 * announcement this process missed (it was disconnected from Redis), by re-checking the tokens
 * of its open streams against the control-plane DB every STREAM_RECHECK_INTERVAL_MS.
 */
import type { Config } from '../config.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import type { Logger } from '../logger.js';
import type { TokenRevocationBus } from '../pubsub/token-revocations.js';

/** Streams held by token: what a revocation ends. */
export interface RevocableStreams {
  /** Ends the open streams of token `tokenId`; returns how many. */
  revokeToken(tokenId: string): number;
  /** Ids of the tokens that have streams open now. */
  openTokenIds(): string[];
}

export interface StreamRevocationDeps {
  readonly config: Pick<Config, 'streamRecheckIntervalMs'>;
  readonly db: ControlPlaneDb;
  readonly revocations: TokenRevocationBus;
  /** Forgets a token's cached lookup, so new requests with it fail at once. */
  readonly tokens: { forget(tokenId: string): void };
  readonly streams: readonly RevocableStreams[];
  readonly logger: Logger;
}

/** Listens for revocations and re-checks open streams' tokens; `stop()` ends the re-check. */
export function useStreamRevocation({
  config,
  db,
  revocations,
  tokens,
  streams,
  logger,
}: StreamRevocationDeps) {
  function endStreamsOf(tokenId: string, reason: string): void {
    tokens.forget(tokenId);
    const ended = streams.reduce((count, holder) => count + holder.revokeToken(tokenId), 0);
    if (ended > 0) logger.info('ended the streams of a revoked token', { tokenId, streams: ended, reason });
  }

  revocations
    .onRevoked((tokenId) => endStreamsOf(tokenId, 'announced'))
    .catch((error: unknown) => logger.warn('could not listen for token revocations', { error }));

  async function recheck(): Promise<void> {
    const ids = [...new Set(streams.flatMap((holder) => holder.openTokenIds()))];
    if (ids.length === 0) return;
    const revoked = await db.apiToken.findMany({
      where: { id: { in: ids }, revokedAt: { not: null } },
      select: { id: true },
    });
    for (const { id } of revoked) endStreamsOf(id, 'recheck');
  }

  const timer = setInterval(() => {
    recheck().catch((error: unknown) => logger.warn('re-checking stream tokens failed', { error }));
  }, config.streamRecheckIntervalMs);
  timer.unref();

  return {
    stop() {
      clearInterval(timer);
    },
  };
}
