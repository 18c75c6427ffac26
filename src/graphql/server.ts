import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GraphQLError, getOperationAST, type ExecutionArgs } from 'graphql';
import { createYoga, type CORSOptions, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { RedisClient } from '../redis/connections.js';
import type { Config } from '../config.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RunEventBus } from '../pubsub/run-events.js';
import type { TokenRevocationBus } from '../pubsub/token-revocations.js';
import type { GraphqlContext, GraphqlServices } from './context.js';
import { createMetrics, isMetricsReader } from './metrics.js';
import { buildSchema } from './schema.js';
import { useConsole } from './use-console.js';
import { useJsonOnly } from './use-json-only.js';
import { createSubscriptionFanout, type SubscriptionFanout } from './subscription-fanout.js';
import { createSubscriptionRegistry, type SubscriptionRegistry } from './subscription-registry.js';
import { useLimits } from './use-limits.js';
import { useStreamRevocation } from './use-stream-revocation.js';
import { useWebSocket } from './use-websocket.js';

// Expected failures whose message is meant for the caller; everything else is masked.
const PUBLIC_APP_ERROR_CODES = new Set(['VALIDATION', 'NOT_FOUND', 'CONFLICT', 'PRECONDITION_FAILED']);
const READY_TIMEOUT_MS = 2000;
// yoga's own wording for a masked error.
const UNEXPECTED_ERROR_MESSAGE = 'Unexpected error.';

export interface GraphqlServerDeps {
  readonly config: Pick<
    Config,
    | 'nodeEnv'
    | 'corsOrigins'
    | 'graphqlLimits'
    | 'metricsToken'
    | 'wsMaxPayloadBytes'
    | 'subscriptionsPerSocket'
    | 'subscriptionsPerToken'
    | 'subscriptionsPerProcess'
    | 'streamRecheckIntervalMs'
  >;
  readonly db: ControlPlaneDb;
  readonly services: GraphqlServices;
  readonly events: RunEventBus;
  /** See GraphqlContext.eventsReady. */
  readonly eventsReady: () => Promise<void>;
  /** Pinged by /readyz. */
  readonly redis: RedisClient;
  /** Revocations from every API process: their tokens' streams end here too. */
  readonly revocations: TokenRevocationBus;
  readonly logger: Logger;
}

interface ServerContext {
  readonly req?: IncomingMessage;
  readonly connectionParams?: Readonly<Record<string, unknown>>;
}

export type GraphqlYoga = YogaServerInstance<ServerContext, GraphqlContext>;

export interface GraphqlServer {
  readonly yoga: GraphqlYoga;
  /** GraphQL (HTTP, SSE and WebSocket) at /graphql, plus /healthz, /readyz and /metrics. */
  readonly server: Server;
  /** Closes WebSocket connections and the HTTP server, ending open subscriptions. */
  close(): Promise<void>;
}

/** Creates the yoga instance for the schema, with auth in the context and masked unexpected errors. */
export function createGraphqlYoga(
  deps: Omit<GraphqlServerDeps, 'redis' | 'revocations' | 'config'> & {
    readonly config: Pick<Config, 'nodeEnv' | 'corsOrigins' | 'graphqlLimits'>;
  },
  plugins: Plugin[] = [],
  // Many clients watching one run share each event's execution and encoding.
  fanout: SubscriptionFanout = createSubscriptionFanoutFor(deps.logger),
): GraphqlYoga {
  const { config, db, services, events, eventsReady, logger } = deps;
  return createYoga<ServerContext, GraphqlContext>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    // GraphiQL from the service itself (bundled), not a CDN: internal networks often have no internet.
    graphiql: config.nodeEnv !== 'production',
    // Loaded when GraphiQL is first opened: the bundle holds about 45 MB of an API process's memory
    // (B5), which a process nobody opens GraphiQL on should not pay.
    renderGraphiQL: async (options) =>
      (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options),
    landingPage: false,
    // Closed unless origins are listed: a page on another origin must not drive the API with a
    // developer's credentials (or at all while auth is disabled).
    cors: corsOptions(config.corsOrigins),
    plugins: [
      useJsonOnly(),
      useConsole(),
      fanout.plugin,
      useLimits({ limits: config.graphqlLimits, authenticate: services.tokens.authenticate }),
      ...plugins,
    ],
    multipart: false,
    logging: {
      debug: (...args) => logger.debug(String(args[0]), { details: args.slice(1) }),
      info: (...args) => logger.info(String(args[0]), { details: args.slice(1) }),
      warn: (...args) => logger.warn(String(args[0]), { details: args.slice(1) }),
      error: (...args) => logger.error(String(args[0]), { details: args.slice(1) }),
    },
    maskedErrors: {
      maskError: (error, message) => maskError(error, message, logger),
    },
    context: async (initial) => {
      const requestId = randomUUID();
      const fromSocket = initial.connectionParams?.authorization;
      const authorization =
        typeof fromSocket === 'string' ? fromSocket : (initial.request?.headers.get('authorization') ?? null);
      const principal = await services.tokens.authenticate(authorization);
      return {
        principal,
        db,
        services,
        events,
        eventsReady,
        logger: logger.child({ requestId }),
        requestId,
      };
    },
  });
}

/** The yoga instance, an http.Server around it with health and metrics, and graphql-ws on /graphql. */
export function createGraphqlServer(deps: GraphqlServerDeps): GraphqlServer {
  const { config, db, redis, services, revocations, logger } = deps;
  const registry = createSubscriptionRegistry(config);
  const fanout = createSubscriptionFanoutFor(logger, registry);
  const metrics = createMetrics(fanout.stats);
  const countOperations: Plugin = {
    onExecute: ({ args }) => countOperation(args),
    onSubscribe: ({ args }) => countOperation(args),
  };
  function countOperation(args: ExecutionArgs): void {
    metrics.countGraphqlOperation(getOperationAST(args.document, args.operationName)?.operation ?? 'unknown');
  }
  const yoga = createGraphqlYoga(deps, [countOperations], fanout);

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    res.on('finish', () => metrics.countHttpRequest(routeOf(path), res.statusCode));
    if (path === '/healthz') return sendText(res, 200, 'ok\n');
    if (path === '/readyz')
      return void ready().then((ok) => sendText(res, ok ? 200 : 503, ok ? 'ready\n' : 'not ready\n'));
    if (path === '/metrics') {
      return void isMetricsReader(req.headers.authorization, deps)
        .then((allowed) => (allowed ? metrics.render(db) : null))
        .then(
          (text) =>
            text === null
              ? sendUnauthorized(res)
              : sendText(res, 200, text, 'text/plain; version=0.0.4; charset=utf-8'),
          (error: unknown) => {
            logger.error('metrics failed', { error });
            sendText(res, 500, 'metrics unavailable\n');
          },
        );
    }
    return yoga(req, res);
  });

  const webSocket = useWebSocket({
    server,
    yoga,
    config,
    authenticate: (authorization) => services.tokens.authenticate(authorization),
    maskError: (error) => maskError(error, UNEXPECTED_ERROR_MESSAGE, logger) as GraphQLError,
    logger,
  });
  const streamRevocation = useStreamRevocation({
    config,
    db,
    revocations,
    tokens: services.tokens,
    streams: [registry, webSocket],
    logger,
  });

  async function ready(): Promise<boolean> {
    try {
      await withTimeout(Promise.all([db.$queryRaw`SELECT 1`, redis.ping()]), READY_TIMEOUT_MS);
      return true;
    } catch (error) {
      logger.warn('not ready', { error });
      return false;
    }
  }

  async function close(): Promise<void> {
    streamRevocation.stop();
    await webSocket.close();
    await new Promise<void>((resolve, reject) => {
      server.close((error) =>
        error && (error as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING'
          ? reject(error)
          : resolve(),
      );
      // Open SSE streams would hold the server forever.
      server.closeAllConnections();
    });
  }

  return { yoga, server, close };
}

function createSubscriptionFanoutFor(logger: Logger, registry?: SubscriptionRegistry): SubscriptionFanout {
  return createSubscriptionFanout({
    maskError: (error) => maskError(error, UNEXPECTED_ERROR_MESSAGE, logger) as GraphQLError,
    ...(registry ? { registry } : {}),
  });
}

// A request from an unlisted origin gets no CORS header at all (not even another origin's).
function corsOptions(origins: readonly string[]): (request: Request) => CORSOptions {
  const allowed = new Set(origins);
  return (request) => {
    const origin = request.headers.get('origin');
    if (origin === null || !allowed.has(origin)) return false;
    return {
      origin: [origin],
      credentials: true,
      methods: ['GET', 'POST', 'OPTIONS'],
      allowedHeaders: ['authorization', 'content-type', 'accept'],
    };
  };
}

function maskError(error: unknown, message: string, logger: Logger): Error {
  const graphqlError = isGraphQLError(error) ? error : null;
  const original = graphqlError ? graphqlError.originalError : error;
  const location = { nodes: graphqlError?.nodes, path: graphqlError?.path };
  // Pothos refusing arguments (a negative page size, `before` with `after`) is bad input, not a bug.
  if (original instanceof Error && original.name === 'PothosValidationError') {
    return new GraphQLError(original.message, { ...location, extensions: { code: 'VALIDATION' } });
  }
  // graphql may be loaded twice (ESM and CJS builds), so recognise its errors by shape, not class.
  if (graphqlError && (!original || isGraphQLError(original))) return graphqlError;
  if (original instanceof AppError && PUBLIC_APP_ERROR_CODES.has(original.code)) {
    return new GraphQLError(original.message, { ...location, extensions: { code: original.code } });
  }
  logger.error('unexpected error', { error: original, path: graphqlError?.path });
  return new GraphQLError(message, { ...location, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}

function isGraphQLError(value: unknown): value is GraphQLError {
  return value instanceof GraphQLError || (value instanceof Error && value.name === 'GraphQLError');
}

function routeOf(path: string): string {
  return ['/graphql', '/healthz', '/readyz', '/metrics'].includes(path) ? path : 'other';
}

function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

function sendUnauthorized(res: ServerResponse): void {
  res.writeHead(401, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    'www-authenticate': 'Bearer realm="metrics"',
  });
  res.end('send an API token or METRICS_TOKEN as "Authorization: Bearer <token>"\n');
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
