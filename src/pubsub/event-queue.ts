/**
 * An async iterator fed synchronously: what a pub/sub listener hands to one subscriber.
 *
 * A live run with hundreds of subscribers pushes every event into hundreds of these, so a push
 * is a few array operations and no promise unless the reader is already waiting. At most
 * `backlog` undelivered values are kept; past that the oldest are dropped (the newest, such as
 * the event that ends a run, always arrive). `onClose` runs once, when the reader returns.
 */
export interface EventQueue<T> extends AsyncIterableIterator<T> {
  /** Hands `value` to the reader, or keeps it until the reader asks. */
  push(value: T): void;
  /** Values dropped because the reader fell more than `backlog` behind. */
  readonly dropped: number;
}

export function createEventQueue<T>(backlog: number, onClose: () => void = () => {}): EventQueue<T> {
  if (!Number.isInteger(backlog) || backlog < 1) throw new RangeError(`backlog must be a positive integer`);
  // A ring buffer: `head` is the oldest kept value, `size` how many are kept.
  const ring: (T | undefined)[] = [];
  let head = 0;
  let size = 0;
  let dropped = 0;
  let waiting: ((result: IteratorResult<T>) => void) | null = null;
  let closed = false;

  function close(): void {
    if (closed) return;
    closed = true;
    ring.length = 0;
    size = 0;
    const reader = waiting;
    waiting = null;
    reader?.({ value: undefined, done: true });
    onClose();
  }

  const queue: EventQueue<T> = {
    push(value: T): void {
      if (closed) return;
      if (waiting) {
        const reader = waiting;
        waiting = null;
        reader({ value, done: false });
        return;
      }
      if (size === backlog) {
        ring[head] = undefined;
        head = (head + 1) % backlog;
        size--;
        dropped++;
      }
      ring[(head + size) % backlog] = value;
      size++;
    },
    get dropped() {
      return dropped;
    },
    next(): Promise<IteratorResult<T>> {
      if (size > 0) {
        const value = ring[head] as T;
        ring[head] = undefined;
        head = (head + 1) % backlog;
        size--;
        return Promise.resolve({ value, done: false });
      }
      if (closed) return Promise.resolve({ value: undefined, done: true });
      if (waiting) return Promise.reject(new Error('EventQueue: next() called while a read is pending'));
      return new Promise((resolve) => {
        waiting = resolve;
      });
    },
    return(): Promise<IteratorResult<T>> {
      close();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return queue;
    },
  };
  return queue;
}
