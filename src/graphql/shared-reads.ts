/**
 * Control-plane reads shared by the subscription events executed together. A stream executes
 * the events it took as one batch (subscription-fanout.ts), and each of them reads the same
 * run, as a target's several events read the same target: the same row with the same selection,
 * asked for in the same synchronous run of resolvers, is one Prisma call instead of one per
 * event. Prisma already sends a tick's reads of a model as one statement, so every event still
 * gets the row as that statement reads it; the sharing ends with the synchronous run.
 */

// The reads started in the current synchronous run, per Prisma client; emptied by a microtask.
const readsInFlight = new WeakMap<object, Map<string, Promise<unknown>>>();

/**
 * `read()`, or the read of the same `model`, `id` and `query` (Pothos' selection) that another
 * resolver started in the same synchronous run on `db`.
 */
export function readShared<T>(
  db: object,
  model: string,
  id: string,
  query: object,
  read: () => PromiseLike<T>,
): Promise<T> {
  let reads = readsInFlight.get(db);
  if (!reads) readsInFlight.set(db, (reads = new Map()));
  if (reads.size === 0) {
    const started = reads;
    queueMicrotask(() => started.clear());
  }
  const key = `${model}\u0000${id}\u0000${JSON.stringify(query)}`;
  let shared = reads.get(key) as Promise<T> | undefined;
  if (!shared) {
    // A Prisma promise starts its query when first awaited; resolve it once for every reader.
    shared = Promise.resolve(read());
    reads.set(key, shared);
  }
  return shared;
}
