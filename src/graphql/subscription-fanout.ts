/**
 * Serving one run's events to hundreds of subscribers at once.
 *
 * graphql-js executes every event once per subscriber and yoga writes each one to its socket as
 * two separate chunks: with 500 dashboards on a 1,000-tenant run that is 3.5 million executions
 * and 7 million socket writes. This plugin keeps the GraphQL semantics and removes the repetition:
 *
 * - Shared execution: an event published on the bus is one object shared by every listener of
 *   the process, so its execution result is remembered per (event, operation, variables, role)
 *   and every subscriber asking the same thing gets the same result object. Events that are not
 *   shared (each subscriber's own SNAPSHOT) execute as before.
 * - SSE encoding once and coalesced writes: a result is encoded to its `event: next` bytes once
 *   (remembered per result object), and each stream writes whatever accumulated at most every
 *   SSE_FLUSH_INTERVAL_MS (at once when it was idle), as one chunk. A stream whose client
 *   does not read stops pulling events, so the per-subscriber sliding backlog of the event bus
 *   bounds what it holds.
 */
import {
  execute,
  getOperationAST,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import { createSourceEventStream } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphqlContext } from './context.js';

/** The longest a ready event waits so that it can share a socket write with the ones behind it. */
export const SSE_FLUSH_INTERVAL_MS = 25;
/** Comment line sent when nothing else was, so proxies keep an idle stream open. */
export const SSE_KEEPALIVE_INTERVAL_MS = 12_000;

const KEEPALIVE = new TextEncoder().encode(':\n\n');
const COMPLETE = new TextEncoder().encode('event: complete\ndata:\n\n');

type MaybePromise<T> = T | Promise<T>;

export interface SubscriptionFanoutStats {
  /** Event executions actually run. */
  executions: number;
  /** Event results served from a shared execution. */
  sharedResults: number;
  /** Socket chunks written to SSE streams (each holding one or more events). */
  sseWrites: number;
  /** Events encoded into SSE streams. */
  sseEvents: number;
}

export interface SubscriptionFanout {
  readonly plugin: Plugin;
  /** What the plugin did so far (exported on /metrics). */
  readonly stats: Readonly<SubscriptionFanoutStats>;
}

/** The yoga plugin and its counters. */
export function createSubscriptionFanout(): SubscriptionFanout {
  const stats: SubscriptionFanoutStats = { executions: 0, sharedResults: 0, sseWrites: 0, sseEvents: 0 };
  const sharedResults = new WeakMap<object, Map<string, MaybePromise<ExecutionResult>>>();
  const documentIds = new WeakMap<DocumentNode, number>();
  let nextDocumentId = 1;

  function sharingKey(args: ExecutionArgs): string {
    let documentId = documentIds.get(args.document);
    if (documentId === undefined) {
      documentId = nextDocumentId++;
      documentIds.set(args.document, documentId);
    }
    const role = (args.contextValue as Partial<GraphqlContext> | undefined)?.principal?.role ?? '-';
    return `${documentId}\u0000${args.operationName ?? ''}\u0000${role}\u0000${JSON.stringify(args.variableValues ?? {})}`;
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

  // graphql's own subscribe() with the per-event execute shared; same errors, same ordering.
  async function subscribeShared(
    args: ExecutionArgs,
  ): Promise<AsyncGenerator<ExecutionResult> | ExecutionResult> {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source;
    const key = sharingKey(args);
    return mapEvents(source[Symbol.asyncIterator](), (payload) => executeEvent(args, key, payload));
  }

  const plugin: Plugin = {
    onSubscribe({ args, setSubscribeFn }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation === 'subscription') setSubscribeFn(subscribeShared as never);
    },
    onResultProcess({ request, result, setResultProcessor }) {
      if (!isAsyncIterable(result) || !acceptsEventStream(request)) return;
      setResultProcessor(
        (iterable, fetchAPI) =>
          new fetchAPI.Response(sseStream(iterable as AsyncIterable<ExecutionResult>, fetchAPI, stats), {
            status: 200,
            headers: {
              'Content-Type': 'text/event-stream',
              Connection: 'keep-alive',
              'Cache-Control': 'no-cache',
              'Content-Encoding': 'none',
            },
          }),
        'text/event-stream',
      );
    },
  };
  return { plugin, stats };
}

async function* mapEvents<T>(
  source: AsyncIterator<unknown>,
  map: (payload: unknown) => MaybePromise<T>,
): AsyncGenerator<T> {
  try {
    for (;;) {
      const next = await source.next();
      if (next.done) return;
      yield await map(next.value);
    }
  } finally {
    await source.return?.();
  }
}

// One encoding of a result for every stream that sends it.
const encodedResults = new WeakMap<object, Uint8Array>();
const encoder = new TextEncoder();

function encodeResult(result: ExecutionResult): Uint8Array {
  let bytes = encodedResults.get(result);
  if (!bytes) {
    bytes = encoder.encode(`event: next\ndata: ${JSON.stringify(result)}\n\n`);
    encodedResults.set(result, bytes);
  }
  return bytes;
}

interface StreamFetchApi {
  readonly ReadableStream: typeof ReadableStream;
}

/**
 * The SSE body: pulls results while the stream asks for data, encodes each once, and writes what
 * accumulated as one chunk (at once after a quiet period, otherwise at most every
 * SSE_FLUSH_INTERVAL_MS). Ends with `event: complete` when the results end.
 *
 * Backpressure works through `pull` alone (yoga's fetch ponyfill does not report desiredSize):
 * each pull is answered by one written chunk, and no result is read between a written chunk and
 * the next pull, so a client that stops reading stops the reading of events.
 */
function sseStream(
  results: AsyncIterable<ExecutionResult>,
  fetchAPI: StreamFetchApi,
  stats: SubscriptionFanoutStats,
): ReadableStream<Uint8Array> {
  const iterator = results[Symbol.asyncIterator]();
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let flushTimer: NodeJS.Timeout | undefined;
  let keepaliveTimer: NodeJS.Timeout | undefined;
  let lastFlushAt = 0;
  let closed = false;
  let pumping = false;
  /** Resolves the stream's outstanding pull; null while it has not asked for more. */
  let demand: (() => void) | null = null;
  let controller!: ReadableStreamDefaultController<Uint8Array>;

  function flush(): void {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (closed || pending.length === 0) return;
    const chunk = pending.length === 1 ? pending[0]! : concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    lastFlushAt = performance.now();
    stats.sseWrites++;
    controller.enqueue(chunk);
    answerPull();
  }

  function answerPull(): void {
    const resolve = demand;
    demand = null;
    resolve?.();
  }

  function scheduleFlush(): void {
    if (flushTimer || closed) return;
    const wait = Math.max(0, lastFlushAt + SSE_FLUSH_INTERVAL_MS - performance.now());
    flushTimer = setTimeout(flush, wait);
  }

  function finish(error?: unknown): void {
    if (closed) return;
    if (error === undefined) {
      pending.push(COMPLETE);
      pendingBytes += COMPLETE.byteLength;
      flush();
      controller.close();
    } else {
      controller.error(error);
    }
    closed = true;
    clearTimeout(flushTimer);
    clearInterval(keepaliveTimer);
    answerPull();
  }

  // Reads results while a pull is outstanding.
  async function pump(): Promise<void> {
    if (pumping) return;
    pumping = true;
    try {
      while (!closed && demand) {
        const next = await iterator.next();
        if (closed) return;
        if (next.value != null) {
          const bytes = encodeResult(next.value);
          pending.push(bytes);
          pendingBytes += bytes.byteLength;
          stats.sseEvents++;
        }
        if (next.done) return finish();
        scheduleFlush();
      }
    } catch (error) {
      finish(error);
    } finally {
      pumping = false;
    }
  }

  return new fetchAPI.ReadableStream<Uint8Array>({
    start(streamController) {
      controller = streamController;
      // Some clients only surface the response once a first byte arrives.
      controller.enqueue(KEEPALIVE);
      keepaliveTimer = setInterval(() => {
        if (!closed && pending.length === 0) controller.enqueue(KEEPALIVE);
      }, SSE_KEEPALIVE_INTERVAL_MS);
    },
    pull() {
      if (closed) return;
      return new Promise<void>((resolve) => {
        demand = resolve;
        if (pending.length > 0) scheduleFlush();
        void pump();
      });
    },
    async cancel() {
      closed = true;
      clearTimeout(flushTimer);
      clearInterval(keepaliveTimer);
      answerPull();
      await iterator.return?.();
    },
  });
}

function concat(chunks: readonly Uint8Array[], byteLength: number): Uint8Array {
  const out = new Uint8Array(byteLength);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function acceptsEventStream(request: Request): boolean {
  return (request.headers.get('accept') ?? '').includes('text/event-stream');
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
