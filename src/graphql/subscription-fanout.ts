/**
 * Serving one run's events to hundreds of subscribers at once.
 *
 * graphql-js executes every event once per subscriber and yoga writes each one to its socket as
 * two chunks, through four layers of async iteration per subscriber: with 500 dashboards on a
 * 1,000-tenant run that is 3.5 million executions, 7 million socket writes and tens of millions
 * of promises. This plugin keeps the GraphQL semantics and removes the repetition:
 *
 * - Shared execution: an event published on the bus is one object shared by every listener of
 *   the process, so its execution result is remembered per (event, operation, variables, role)
 *   and every subscriber asking the same thing gets the same result object. Events that are not
 *   shared (each subscriber's own SNAPSHOT) execute alone. WebSocket subscriptions share too.
 * - SSE without per-event promises: when a subscription's source is an EventQueue (ours are),
 *   its SSE stream drains the queue itself: the queue says values are there, and the stream
 *   takes all of them at once, executes (shared), encodes each result once (shared across
 *   streams) and writes what accumulated as one chunk, at most once per flush interval
 *   (at once when the stream was idle). It takes nothing while its client is not reading, so
 *   the queue's sliding backlog bounds what a slow client holds.
 * - Limits and revocation: each subscription holds a slot in the SubscriptionRegistry (per
 *   token, per process) while it is open, and ends with an UNAUTHENTICATED error when its
 *   token is revoked.
 */
import {
  createSourceEventStream,
  execute,
  getOperationAST,
  GraphQLError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { isEventQueue, type EventQueue } from '../pubsub/event-queue.js';
import type { GraphqlContext } from './context.js';
import type { SubscriptionLease, SubscriptionRegistry } from './subscription-registry.js';

/**
 * How often a busy SSE stream writes: every socket write costs tens of microseconds of CPU on a
 * small VM, so the interval grows with the number of open streams to keep the process at about
 * SSE_WRITES_PER_SECOND writes in all, between these bounds (a stream that was idle writes at
 * once; the interval only spaces the writes of a busy one).
 */
export const SSE_FLUSH_INTERVAL_MIN_MS = 25;
export const SSE_FLUSH_INTERVAL_MAX_MS = 50;
export const SSE_WRITES_PER_SECOND = 10_000;

/** The flush interval for `streams` open SSE streams. */
export function sseFlushIntervalMs(streams: number): number {
  const spread = (streams * 1000) / SSE_WRITES_PER_SECOND;
  return Math.min(SSE_FLUSH_INTERVAL_MAX_MS, Math.max(SSE_FLUSH_INTERVAL_MIN_MS, spread));
}
/**
 * Events whose executions start together: their control-plane reads batch into one statement per
 * model, and a slice's results are handled in one turn of the event loop, so a stream catching up
 * on thousands of events lets the others write between its slices.
 */
export const EXECUTION_SLICE = 64;
/** Comment line sent when nothing else was, so proxies keep an idle stream open. */
export const SSE_KEEPALIVE_INTERVAL_MS = 12_000;

const KEEPALIVE = Buffer.from(':\n\n');
// Put at the end of a revoked subscription's queue; it becomes REVOKED_RESULT.
const STREAM_REVOKED = Object.freeze({ revoked: true });
const REVOKED_RESULT: ExecutionResult = Object.freeze({
  errors: [
    new GraphQLError('The token of this subscription was revoked', {
      extensions: { code: 'UNAUTHENTICATED' },
    }),
  ],
});
const COMPLETE = Buffer.from('event: complete\ndata:\n\n');
const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  Connection: 'keep-alive',
  'Cache-Control': 'no-cache',
  'Content-Encoding': 'none',
};

type MaybePromise<T> = T | Promise<T>;

export interface SubscriptionFanoutStats {
  /** Event executions actually run. */
  executions: number;
  /** Event results served from a shared execution. */
  sharedResults: number;
  /** Socket chunks written to SSE streams (each holding one or more events). */
  sseWrites: number;
  /** Events sent on SSE streams. */
  sseEvents: number;
  /** Chunks of events encoded and joined for SSE streams (streams sending the same events share one). */
  sseChunks: number;
  /** SSE streams open now. */
  sseStreams: number;
}

export interface SubscriptionFanoutOptions {
  /** What a subscriber sees of an error raised while executing an event (yoga's error masking). */
  readonly maskError: (error: GraphQLError) => GraphQLError;
  /** Caps open subscriptions and ends a revoked token's; none when absent. */
  readonly registry?: SubscriptionRegistry;
}

export interface SubscriptionFanout {
  readonly plugin: Plugin;
  /** What the plugin did so far (exported on /metrics). */
  readonly stats: Readonly<SubscriptionFanoutStats>;
}

/** A subscription whose source is an EventQueue, as its SSE stream needs it. */
interface QueuedSubscription {
  readonly queue: EventQueue<unknown>;
  readonly resultOf: (payload: unknown) => MaybePromise<ExecutionResult>;
}

/** The yoga plugin and its counters. */
export function createSubscriptionFanout({
  maskError,
  registry,
}: SubscriptionFanoutOptions): SubscriptionFanout {
  const stats: SubscriptionFanoutStats = {
    executions: 0,
    sharedResults: 0,
    sseWrites: 0,
    sseEvents: 0,
    sseChunks: 0,
    sseStreams: 0,
  };
  const sharedResults = new WeakMap<object, Map<string, MaybePromise<ExecutionResult>>>();
  const documentIds = new WeakMap<DocumentNode, number>();
  const queuedByRequest = new WeakMap<Request, QueuedSubscription>();
  let nextDocumentId = 1;

  function sharingKey(args: ExecutionArgs): string {
    let documentId = documentIds.get(args.document);
    if (documentId === undefined) {
      documentId = nextDocumentId++;
      documentIds.set(args.document, documentId);
    }
    const role = (args.contextValue as Partial<GraphqlContext> | undefined)?.principal?.role ?? '-';
    const variables = JSON.stringify(args.variableValues ?? {});
    return `${documentId}\u0000${args.operationName ?? ''}\u0000${role}\u0000${variables}`;
  }

  function executeEvent(args: ExecutionArgs, key: string, payload: unknown): MaybePromise<ExecutionResult> {
    if (typeof payload !== 'object' || payload === null) return run();
    let byKey = sharedResults.get(payload);
    if (!byKey) sharedResults.set(payload, (byKey = new Map()));
    const known = byKey.get(key);
    if (known) {
      stats.sharedResults++;
      return known;
    }
    const result = run();
    byKey.set(key, result);
    return result;

    function run(): MaybePromise<ExecutionResult> {
      stats.executions++;
      return execute({ ...args, rootValue: payload }) as MaybePromise<ExecutionResult>;
    }
  }

  // graphql's own subscribe() with the per-event execution shared; same errors, same order.
  async function subscribeShared(
    args: ExecutionArgs,
  ): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    const context = args.contextValue as Partial<GraphqlContext> | undefined;
    // Ends the source once it exists; the token may be revoked before that.
    let revokeSource: (() => void) | null = null;
    let revoked = false;
    let lease: SubscriptionLease | undefined;
    if (registry && context?.principal) {
      try {
        lease = registry.acquire(context.principal, () => {
          revoked = true;
          revokeSource?.();
        });
      } catch (error) {
        if (error instanceof GraphQLError) return { errors: [error] };
        throw error;
      }
    }
    let source: Awaited<ReturnType<typeof createSourceEventStream>>;
    try {
      source = await createSourceEventStream(args);
    } catch (error) {
      lease?.release();
      throw error;
    }
    if (!isAsyncIterable(source)) {
      lease?.release();
      return source;
    }
    const key = sharingKey(args);
    const resultOf = (payload: unknown) =>
      payload === STREAM_REVOKED ? REVOKED_RESULT : executeEvent(args, key, payload);
    const request = (context as { request?: Request } | undefined)?.request;
    const queue = isEventQueue(source) ? source : null;
    if (request && queue) queuedByRequest.set(request, { queue, resultOf });
    const mapped = mapEvents(source[Symbol.asyncIterator](), resultOf, () => lease?.release(), queue);
    // A queue delivers what it holds, then the revocation error, then ends (SSE and WebSocket alike).
    revokeSource = () => (queue ? queue.endWith([STREAM_REVOKED]) : void mapped.return());
    if (revoked) revokeSource();
    return mapped;
  }

  function maskResult(result: ExecutionResult): ExecutionResult {
    return result.errors?.length ? { ...result, errors: result.errors.map(maskError) } : result;
  }

  const plugin: Plugin = {
    onSubscribe({ args, setSubscribeFn }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation === 'subscription') setSubscribeFn(subscribeShared as never);
    },
    onResultProcess({ request, result, setResultProcessor }) {
      const queued = queuedByRequest.get(request);
      if (!queued || !isAsyncIterable(result) || !acceptsEventStream(request)) return;
      // The stream drains the queue itself; yoga's iterator over it is only closed.
      const iterator = result[Symbol.asyncIterator]();
      setResultProcessor(
        (_result, fetchAPI) =>
          new fetchAPI.Response(
            queuedSseStream(queued, () => void iterator.return?.(), maskResult, fetchAPI, stats),
            { status: 200, headers: SSE_HEADERS },
          ),
        'text/event-stream',
      );
    },
  };
  return { plugin, stats };
}

/**
 * `source` with each value mapped, ending `source` and calling `onEnd` once when it ends or the
 * reader returns. Not an async generator: a generator's return() waits until its body reaches a
 * `yield`, so a subscription parked on a quiet topic could never be ended from outside and held
 * its queue and Redis channel forever after its WebSocket closed.
 *
 * When `source` is an EventQueue, a read that finds nothing mapped yet takes everything the queue
 * holds and starts mapping it a slice at a time, as an SSE flush does: the control-plane reads of
 * those events (`run`, `target`) then batch into one statement per model, where a WebSocket
 * reader taking one result at a time would otherwise wait for one round trip per event and field.
 */
function mapEvents<T>(
  source: AsyncIterator<unknown>,
  map: (payload: unknown) => MaybePromise<T>,
  onEnd: () => void,
  queue: EventQueue<unknown> | null = null,
): AsyncIterableIterator<T> & { return(): Promise<IteratorResult<T>> } {
  let ended = false;
  /** Values being mapped, in order, and values taken from the queue but not mapped yet. */
  const ahead: MaybePromise<T>[] = [];
  let taken: unknown[] = [];
  async function end(): Promise<void> {
    if (ended) return;
    ended = true;
    ahead.length = 0;
    taken = [];
    onEnd();
    await source.return?.();
  }
  const iterator = {
    async next(): Promise<IteratorResult<T>> {
      if (ended) return { value: undefined, done: true };
      try {
        if (ahead.length === 0 && taken.length === 0) {
          const next = await source.next();
          if (next.done || ended) {
            await end();
            return { value: undefined, done: true };
          }
          taken = [next.value, ...(queue ? queue.takeAll() : [])];
        }
        if (ahead.length === 0)
          for (const value of taken.splice(0, EXECUTION_SLICE)) ahead.push(awaitedLater(map(value)));
        return { value: await ahead.shift()!, done: false };
      } catch (error) {
        await end();
        throw error;
      }
    },
    async return(): Promise<IteratorResult<T>> {
      await end();
      return { value: undefined, done: true };
    },
    async throw(error: unknown): Promise<IteratorResult<T>> {
      await end();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

// One encoding of a result for every stream that sends it.
const encodedResults = new WeakMap<object, Buffer>();

function encodeResult(result: ExecutionResult): Buffer {
  let bytes = encodedResults.get(result);
  if (!bytes) {
    bytes = Buffer.from(`event: next\ndata: ${JSON.stringify(result)}\n\n`);
    encodedResults.set(result, bytes);
  }
  return bytes;
}

interface StreamFetchApi {
  readonly ReadableStream: typeof ReadableStream;
}

/**
 * The SSE body of a queued subscription. Backpressure works through `pull` alone (yoga's fetch
 * ponyfill does not report desiredSize, and only asks again once something was written): a
 * pull asks for one chunk, and the queue is not drained between a written chunk and the next
 * pull, which comes only while the client keeps reading.
 */
function queuedSseStream(
  { queue, resultOf }: QueuedSubscription,
  release: () => void,
  maskResult: (result: ExecutionResult) => ExecutionResult,
  fetchAPI: StreamFetchApi,
  stats: SubscriptionFanoutStats,
): ReadableStream<Uint8Array> {
  let flushTimer: NodeJS.Timeout | undefined;
  /** The pending flush timer is the immediate one for the stream's end. */
  let flushingNow = false;
  let keepaliveTimer: NodeJS.Timeout | undefined;
  let lastFlushAt = 0;
  let flushing = false;
  let closed = false;
  /** The stream asked for a chunk and has not received it yet. */
  let demand = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;

  // The stream's last chunk never waits: nothing would share its write anyway.
  function scheduleFlush(): void {
    if (flushing || closed || !demand) return;
    const now = queue.ending;
    if (flushTimer && (flushingNow || !now)) return;
    clearTimeout(flushTimer);
    flushingNow = now;
    const wait = now
      ? 0
      : Math.max(0, lastFlushAt + sseFlushIntervalMs(stats.sseStreams) - performance.now());
    flushTimer = setTimeout(() => void flush(), wait);
  }

  // Takes everything the queue holds, executes (shared) and encodes it in order, writes it.
  async function flush(): Promise<void> {
    flushTimer = undefined;
    flushingNow = false;
    if (closed) return;
    flushing = true;
    try {
      // Every execution starts before any is awaited: fields read from the control-plane DB
      // (`run`, `target`) then go out in the same tick, and Prisma batches each model's
      // findUnique calls into one statement. Awaited in turn, a busy run cost a round trip per
      // event and field, and the stream fell seconds behind the run (issue 16).
      const payloads = queue.takeAll();
      const chunks: Buffer[] = [];
      for (let start = 0; start < payloads.length; start += EXECUTION_SLICE) {
        const results = payloads
          .slice(start, start + EXECUTION_SLICE)
          .map((payload) => awaitedLater(resultOf(payload)));
        for (const result of results) {
          chunks.push(encodeResult(maskResult(isPromise(result) ? await result : result)));
          if (closed) return;
        }
      }
      const events = chunks.length;
      if (events > 0) stats.sseChunks++;
      const ended = queue.done;
      if (ended) chunks.push(COMPLETE);
      if (chunks.length > 0) write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), events);
      if (ended) finish();
    } catch (error) {
      finish(error);
    } finally {
      flushing = false;
    }
    // Values that arrived while an execution was awaited.
    scheduleFlush();
  }

  function write(chunk: Buffer, events: number): void {
    lastFlushAt = performance.now();
    stats.sseWrites++;
    stats.sseEvents += events;
    demand = false;
    controller.enqueue(chunk);
  }

  function finish(error?: unknown): void {
    if (!stop()) return;
    if (error === undefined) controller.close();
    else controller.error(error);
  }

  /** Ends the stream's own work (timers, queue, yoga's iterator) once; false if it had ended. */
  function stop(): boolean {
    if (closed) return false;
    closed = true;
    stats.sseStreams--;
    clearTimeout(flushTimer);
    clearInterval(keepaliveTimer);
    queue.onAvailable(null);
    void queue.return();
    release();
    return true;
  }

  return new fetchAPI.ReadableStream<Uint8Array>({
    start(streamController) {
      controller = streamController;
      stats.sseStreams++;
      // Some clients only surface the response once a first byte arrives.
      controller.enqueue(KEEPALIVE);
      keepaliveTimer = setInterval(() => {
        if (!closed) controller.enqueue(KEEPALIVE);
      }, SSE_KEEPALIVE_INTERVAL_MS);
      queue.onAvailable(scheduleFlush);
    },
    pull() {
      if (closed) return;
      demand = true;
      scheduleFlush();
    },
    cancel() {
      stop();
    },
  });
}

/**
 * `result`, marked as handled: a batch awaits its results in order, so one that rejects while an
 * earlier one is awaited (or after the stream ended) must not count as an unhandled rejection.
 * Awaiting it still throws.
 */
function awaitedLater<T>(result: MaybePromise<T>): MaybePromise<T> {
  if (isPromise(result)) result.catch(() => undefined);
  return result;
}

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

function acceptsEventStream(request: Request): boolean {
  return (request.headers.get('accept') ?? '').includes('text/event-stream');
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
