/**
 * GraphQL over WebSocket (`graphql-transport-ws`) on the HTTP server, through yoga's envelop so
 * both transports share plugins, auth and context.
 *
 * graphql-ws's protocol server (`makeServer`) does the protocol; this file is the `ws` glue that
 * graphql-ws's own `useServer` would be, plus what a hostile peer requires of it:
 * - frames above WS_MAX_PAYLOAD_BYTES are refused by `ws` before they are read (close 1009);
 * - `connection_init` must carry a valid token (`connectionParams.authorization`), or the socket
 *   is closed with 4403 before anything else happens on it;
 * - at most SUBSCRIPTIONS_PER_SOCKET operations at once on one socket (the token and
 *   process limits are the SubscriptionRegistry's);
 * - a bad operation (a syntax error, an unexpected failure) fails that operation alone, and is
 *   logged through our logger (redacted, one line), never printed to stderr as a stack;
 * - sockets are tracked by token, so revoking a token closes its sockets (4403).
 */
import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode, handleProtocols, makeServer, type SubscribePayload } from 'graphql-ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Principal } from '../auth/principal.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { SubscriptionLimitScope, subscriptionLimitError } from './subscription-registry.js';

/** How often an idle socket is pinged; a peer that does not answer within as long is dropped. */
export const WS_KEEPALIVE_MS = 12_000;
/** Close code for a socket whose token was revoked (graphql-ws's Forbidden). */
export const WS_CLOSE_TOKEN_REVOKED = CloseCode.Forbidden;

/** What this file uses of the yoga instance. */
export type WebSocketYoga = Pick<
  YogaServerInstance<Record<string, unknown>, Record<string, unknown>>,
  'graphqlEndpoint' | 'getEnveloped'
>;

export interface WebSocketDeps {
  readonly server: Server;
  readonly yoga: WebSocketYoga;
  readonly config: Pick<Config, 'wsMaxPayloadBytes' | 'subscriptionsPerSocket' | 'corsOrigins'>;
  /** The principal of an `Authorization` value; null when missing, unknown or revoked. */
  readonly authenticate: (authorization: string | null) => Promise<Principal | null>;
  /** What the caller sees of an unexpected error (yoga's masking; it logs the error). */
  readonly maskError: (error: unknown) => GraphQLError;
  readonly logger: Logger;
}

export interface GraphqlWebSocket {
  /** Closes every socket authenticated with token `tokenId` (4403); returns how many. */
  revokeToken(tokenId: string): number;
  /** Ids of the tokens that have sockets open now. */
  openTokenIds(): string[];
  /** Closes every socket (1001) and the WebSocket server. */
  close(): Promise<void>;
}

interface SocketExtra {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  principal?: Principal;
}

interface RootValue {
  readonly execute: (args: ExecutionArgs) => unknown;
  readonly subscribe: (args: ExecutionArgs) => unknown;
}

/** Serves graphql-ws on `yoga.graphqlEndpoint` of `server`. */
export function useWebSocket({
  server,
  yoga,
  config,
  authenticate,
  maskError,
  logger,
}: WebSocketDeps): GraphqlWebSocket {
  const sockets = new Map<string, Set<WebSocket>>();
  const wsServer = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    maxPayload: config.wsMaxPayloadBytes,
    handleProtocols: (protocols) => handleProtocols(protocols) || false,
    // Browsers apply no CORS to WebSocket, so a page on any origin could open one with the user's
    // network position (and, with auth disabled, act as ADMIN): only our own origin, listed ones
    // and clients that send no Origin (not browsers) may upgrade.
    verifyClient: (
      { origin, req }: { origin?: string; req: IncomingMessage },
      done: (allowed: boolean, code?: number, message?: string) => void,
    ) =>
      isAllowedOrigin(origin, req.headers.host, config.corsOrigins)
        ? done(true)
        : done(false, 403, 'Origin not allowed'),
  });
  wsServer.on('error', (error) => logger.error('websocket server error', { error }));

  const protocol = makeServer<Record<string, unknown>, SocketExtra>({
    execute: (args) => (args.rootValue as RootValue).execute(args) as never,
    subscribe: (args) => (args.rootValue as RootValue).subscribe(args) as never,
    onConnect: async (ctx) => {
      const authorization = ctx.connectionParams?.authorization;
      const principal = await authenticate(typeof authorization === 'string' ? authorization : null);
      // false closes the socket with 4403 Forbidden, before any operation.
      if (!principal) return false;
      ctx.extra.principal = principal;
      if (principal.tokenId) track(principal.tokenId, ctx.extra.socket);
      return true;
    },
    onSubscribe: async (ctx, _id, payload) => {
      // graphql-ws has registered this operation already, so it counts itself.
      if (Object.keys(ctx.subscriptions).length > config.subscriptionsPerSocket) {
        return [subscriptionLimitError(SubscriptionLimitScope.SOCKET, config.subscriptionsPerSocket)];
      }
      try {
        return await prepare(ctx.extra, ctx.connectionParams ?? {}, payload);
      } catch (error) {
        return [toOwnGraphQLError(isGraphQLError(error) ? error : maskError(error))];
      }
    },
  });

  async function prepare(
    extra: SocketExtra,
    connectionParams: Readonly<Record<string, unknown>>,
    payload: SubscribePayload,
  ): Promise<ExecutionArgs | GraphQLError[]> {
    const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
      req: extra.request,
      socket: extra.socket,
      params: payload,
      connectionParams,
    });
    const document = parse(payload.query);
    const errors = validate(schema, document);
    if (errors.length > 0) return errors.map(toOwnGraphQLError);
    return {
      schema,
      operationName: payload.operationName ?? null,
      document,
      variableValues: payload.variables ?? null,
      contextValue: await contextFactory(),
      rootValue: { execute, subscribe } satisfies RootValue,
    };
  }

  function track(tokenId: string, socket: WebSocket): void {
    let ofToken = sockets.get(tokenId);
    if (!ofToken) sockets.set(tokenId, (ofToken = new Set()));
    ofToken.add(socket);
  }

  function untrack(principal: Principal | undefined, socket: WebSocket): void {
    if (!principal?.tokenId) return;
    const ofToken = sockets.get(principal.tokenId);
    ofToken?.delete(socket);
    if (ofToken?.size === 0) sockets.delete(principal.tokenId);
  }

  wsServer.on('connection', (socket, request) => {
    const extra: SocketExtra = { socket, request };
    // A frame above maxPayload or a broken peer: `ws` closes the socket itself (1009, 1002).
    socket.on('error', (error) => logger.debug('websocket closed on a bad frame', { reason: error.message }));
    const keepalive = startKeepalive(socket);
    const closed = protocol.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data: Buffer) => {
            handle(data.toString()).catch((error: unknown) => {
              // Only bugs get here: every expected failure is answered on its operation.
              logger.error('websocket message failed', { error });
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      extra,
    );
    socket.once('close', (code, reason) => {
      clearInterval(keepalive);
      untrack(extra.principal, socket);
      closed(code, reason.toString()).catch((error: unknown) =>
        logger.error('ending websocket subscriptions failed', { error }),
      );
    });
  });

  function revokeToken(tokenId: string): number {
    const ofToken = [...(sockets.get(tokenId) ?? [])];
    for (const socket of ofToken) socket.close(WS_CLOSE_TOKEN_REVOKED, 'Token revoked');
    return ofToken.length;
  }

  async function close(): Promise<void> {
    for (const client of wsServer.clients) client.close(1001, 'Going away');
    await new Promise<void>((resolve) => wsServer.close(() => resolve()));
  }

  return { revokeToken, openTokenIds: () => [...sockets.keys()], close };
}

/** Pings every WS_KEEPALIVE_MS; a peer that has not answered the previous ping is dropped. */
function startKeepalive(socket: WebSocket): NodeJS.Timeout {
  let answered = true;
  socket.on('pong', () => {
    answered = true;
  });
  const timer = setInterval(() => {
    if (!answered) return socket.terminate();
    answered = false;
    if (socket.readyState === socket.OPEN) socket.ping();
  }, WS_KEEPALIVE_MS);
  timer.unref();
  return timer;
}

// graphql may be loaded twice (ESM and CJS builds): graphql-ws accepts only its own class.
function toOwnGraphQLError(error: Pick<GraphQLError, 'message' | 'extensions'>): GraphQLError {
  if (error instanceof GraphQLError) return error;
  return new GraphQLError(error.message, { extensions: error.extensions });
}

function isGraphQLError(value: unknown): value is GraphQLError {
  return value instanceof GraphQLError || (value instanceof Error && value.name === 'GraphQLError');
}

/** Whether a WebSocket upgrade with this Origin header may proceed (see verifyClient above). */
export function isAllowedOrigin(
  origin: string | undefined,
  host: string | undefined,
  corsOrigins: readonly string[],
): boolean {
  if (!origin) return true;
  if (corsOrigins.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
