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
 *   takes all of them at once, executes (shared), encodes and writes what accumulated as one
 *   chunk, at most once per flush interval (at once when the stream was idle). Streams due at
 *   the same time flush as one batch, and streams of one query that took the same events share
 *   one chunk: 500 dashboards on a run cost one encoding and 500 socket writes per flush. A
 *   stream takes nothing while its client is not reading, so the queue's sliding backlog
 *   bounds what a slow client holds.
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
 * How often a busy SSE stream writes (a stream that was idle writes at once; the interval only
 * spaces the writes of a busy one, and streams due together share each batch's chunk). Every
 * socket write costs CPU, 20-200 µs on a small VM depending on its load, and hundreds of
 * streams on a busy run all write every interval, so the interval grows with the number of
 * open streams: the process writes at most SSE_WRITES_PER_SECOND chunks in all, and its batches
 * of writes take at most SSE_WRITE_SHARE of its time at the cost per write it measures, between
 * these bounds. Past that share the API fell behind the run (issue 16: lag p99 over 2 s with 500
 * streams on a loaded machine).
 */
export const SSE_FLUSH_INTERVAL_MIN_MS = 25;
export const SSE_FLUSH_INTERVAL_MAX_MS = 100;
export const SSE_WRITES_PER_SECOND = 10_000;
export const SSE_WRITE_SHARE = 0.25;

/** The flush interval for `streams` open SSE streams when a stream's write costs `writeMs`. */
export function sseFlushIntervalMs(streams: number, writeMs = 0): number {
  const spread = Math.max((streams * 1000) / SSE_WRITES_PER_SECOND, (streams * writeMs) / SSE_WRITE_SHARE);
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
  /** Subscriptions with the same key get the same result for the same event (sharingKey). */
  readonly key: string;
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
    if (request && queue) queuedByRequest.set(request, { queue, key, resultOf });
    const mapped = mapEvents(source[Symbol.asyncIterator](), resultOf, () => lease?.release(), queue);
    // A queue delivers what it holds, then the revocation error, then ends (SSE and WebSocket alike).
    revokeSource = () => (queue ? queue.endWith([STREAM_REVOKED]) : void mapped.return());
    if (revoked) revokeSource();
    return mapped;
  }

  function maskResult(result: ExecutionResult): ExecutionResult {
    return result.errors?.length ? { ...result, errors: result.errors.map(maskError) } : result;
  }
  const sseStreams = createSseStreams(stats, maskResult);

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
            sseStreams.open(queued, () => void iterator.return?.(), fetchAPI),
            {
              status: 200,
              headers: SSE_HEADERS,
            },
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

/** The events one or more streams of a batch took, and their encoding as one chunk. */
interface SharedChunk {
  readonly payloads: readonly unknown[];
  readonly bytes: MaybePromise<Buffer>;
}

/** One SSE stream, as the batches that flush it see it. */
interface SseStream {
  readonly subscription: QueuedSubscription;
  /** When its next write may go out (performance.now() time): a busy stream writes once per interval. */
  nextFlushAt: number;
  /** The batch it waits in (DUE_NOW or a due time), or null. */
  dueAt: number | null;
  /** Open, not flushing, its client asked for more, and its queue has something (or ended). */
  wantsFlush(): boolean;
  /** Writes `chunk` (the events it just took; null for none), then schedules itself again. */
  flush(chunk: MaybePromise<Buffer> | null, events: number, nextFlushAt: number): Promise<void>;
}

/** `dueAt` of a stream flushed in the next turn of the event loop. */
const DUE_NOW = -1;
/**
 * Due times are rounded up to this grid, so streams that wrote apart (one whose client read
 * late) fall back into step with the others and share their chunk again.
 */
const FLUSH_GRID_MS = 5;
/** Batches with fewer synchronous writes do not measure the cost of one (fixed costs dominate). */
const MEASURED_BATCH_WRITES = 8;
/** Weight of the newest batch in the smoothed cost of a write. */
const WRITE_COST_SMOOTHING = 0.2;

/**
 * SSE streams over EventQueues, flushed in batches: all streams due at one time take their
 * events together, and those of one query (same sharing key) that took the same events share
 * one encoded chunk. Every stream of a run hears an event in the same turn, so with hundreds
 * of dashboards on one run a batch encodes each event once, builds one chunk and writes it to
 * every socket; only the write itself is per stream. One timer serves each due time, not one
 * per stream.
 */
function createSseStreams(
  stats: SubscriptionFanoutStats,
  maskResult: (result: ExecutionResult) => ExecutionResult,
) {
  const dueNow = new Set<SseStream>();
  let immediate: NodeJS.Immediate | null = null;
  const dueLater = new Map<number, Set<SseStream>>();
  /** What one stream's part of a batch costs (taking, writing, the socket's own write), smoothed. */
  let writeMs = 0;

  function schedule(stream: SseStream): void {
    // Called on every event pushed to every stream: a stream already due returns at once, unless
    // its queue just took the value that ends it (the stream's last chunk never waits: nothing
    // would share its write anyway).
    if (stream.dueAt === DUE_NOW) return;
    const ending = stream.subscription.queue.ending;
    if (stream.dueAt !== null && !ending) return;
    if (!stream.wantsFlush()) return;
    const now = ending || stream.nextFlushAt <= performance.now();
    if (stream.dueAt !== null) dueLater.get(stream.dueAt)?.delete(stream);
    if (now) {
      stream.dueAt = DUE_NOW;
      dueNow.add(stream);
      immediate ??= setImmediate(flushDueNow);
      return;
    }
    const at = stream.nextFlushAt;
    stream.dueAt = at;
    let batch = dueLater.get(at);
    if (!batch) {
      const streams = new Set<SseStream>();
      dueLater.set(at, streams);
      setTimeout(() => {
        dueLater.delete(at);
        flushBatch(streams);
      }, at - performance.now());
      batch = streams;
    }
    batch.add(stream);
  }

  function unschedule(stream: SseStream): void {
    if (stream.dueAt === DUE_NOW) dueNow.delete(stream);
    else if (stream.dueAt !== null) dueLater.get(stream.dueAt)?.delete(stream);
    stream.dueAt = null;
  }

  function flushDueNow(): void {
    immediate = null;
    const streams = [...dueNow];
    dueNow.clear();
    flushBatch(streams);
  }

  function flushBatch(streams: Iterable<SseStream>): void {
    const startedAt = performance.now();
    const interval = sseFlushIntervalMs(stats.sseStreams, writeMs);
    const nextFlushAt = Math.ceil((startedAt + interval) / FLUSH_GRID_MS) * FLUSH_GRID_MS;
    const chunks = new Map<string, SharedChunk[]>();
    const writesBefore = stats.sseWrites;
    for (const stream of streams) {
      stream.dueAt = null;
      if (!stream.wantsFlush()) continue;
      const payloads = stream.subscription.queue.takeAll();
      const chunk = payloads.length > 0 ? sharedChunk(chunks, stream.subscription, payloads) : null;
      void stream.flush(chunk, payloads.length, nextFlushAt);
    }
    // Node writes to the sockets in process.nextTick callbacks queued by the writes above; this
    // one runs after them.
    const writes = stats.sseWrites - writesBefore;
    if (writes >= MEASURED_BATCH_WRITES) {
      process.nextTick(() => {
        const sample = (performance.now() - startedAt) / writes;
        writeMs = writeMs === 0 ? sample : writeMs + (sample - writeMs) * WRITE_COST_SMOOTHING;
      });
    }
  }

  // The chunk of a stream that took the same events as another of its query in this batch, else a new one.
  function sharedChunk(
    chunks: Map<string, SharedChunk[]>,
    { key, resultOf }: QueuedSubscription,
    payloads: readonly unknown[],
  ): MaybePromise<Buffer> {
    let ofKey = chunks.get(key);
    if (!ofKey) chunks.set(key, (ofKey = []));
    const same = ofKey.find((chunk) => sameValues(chunk.payloads, payloads));
    if (same) {
      // Each of its events is a result served from a shared execution, as for a WebSocket.
      stats.sharedResults += payloads.length;
      return same.bytes;
    }
    stats.sseChunks++;
    const bytes = encodeChunk(payloads, resultOf, maskResult);
    // A failed execution fails each stream that sends it, when that stream awaits it.
    awaitedLater(bytes);
    ofKey.push({ payloads, bytes });
    return bytes;
  }

  /**
   * The SSE body of a queued subscription. Backpressure works through `pull` alone (yoga's fetch
   * ponyfill does not report desiredSize, and only asks again once something was written): a
   * pull asks for one chunk, and the queue is not drained between a written chunk and the next
   * pull, which comes only while the client keeps reading.
   */
  function open(
    subscription: QueuedSubscription,
    release: () => void,
    fetchAPI: StreamFetchApi,
  ): ReadableStream<Uint8Array> {
    const { queue } = subscription;
    let keepaliveTimer: NodeJS.Timeout | undefined;
    let flushing = false;
    let closed = false;
    /** The stream asked for a chunk and has not received it yet. */
    let demand = false;
    let controller!: ReadableStreamDefaultController<Uint8Array>;

    const stream: SseStream = {
      subscription,
      nextFlushAt: 0,
      dueAt: null,
      wantsFlush: () => !closed && !flushing && demand && (queue.size > 0 || queue.done),
      async flush(chunk, events, nextFlushAt) {
        flushing = true;
        try {
          const bytes = chunk === null ? null : isPromise(chunk) ? await chunk : chunk;
          if (closed) return;
          const ended = queue.done;
          if (bytes) write(ended ? Buffer.concat([bytes, COMPLETE]) : bytes, events);
          else if (ended) write(COMPLETE, 0);
          if (ended) finish();
        } catch (error) {
          finish(error);
        } finally {
          flushing = false;
        }
        stream.nextFlushAt = nextFlushAt;
        // Values that arrived while the chunk was built.
        schedule(stream);
      },
    };

    function write(chunk: Buffer, events: number): void {
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
      unschedule(stream);
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
        queue.onAvailable(() => schedule(stream));
      },
      pull() {
        if (closed) return;
        demand = true;
        schedule(stream);
      },
      cancel() {
        stop();
      },
    });
  }

  return { open };
}

/**
 * `payloads` executed and encoded in order as one chunk. Executions start a slice at a time
 * before any is awaited: fields read from the control-plane DB (`run`, `target`) then go out in
 * the same tick, and Prisma batches each model's reads into one statement (awaited in turn, a
 * busy run cost a round trip per event and field, and the stream fell seconds behind: issue 16).
 */
function encodeChunk(
  payloads: readonly unknown[],
  resultOf: (payload: unknown) => MaybePromise<ExecutionResult>,
  maskResult: (result: ExecutionResult) => ExecutionResult,
): MaybePromise<Buffer> {
  const parts: Buffer[] = [];
  let start = 0;
  const encodeFrom = (): MaybePromise<Buffer> => {
    while (start < payloads.length) {
      const results = payloads.slice(start, start + EXECUTION_SLICE).map((p) => awaitedLater(resultOf(p)));
      start += EXECUTION_SLICE;
      if (results.some(isPromise)) {
        return Promise.all(results).then((done) => {
          for (const result of done) parts.push(encodeResult(maskResult(result)));
          return encodeFrom();
        });
      }
      for (const result of results) parts.push(encodeResult(maskResult(result as ExecutionResult)));
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  };
  try {
    return encodeFrom();
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
