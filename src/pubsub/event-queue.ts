/**
 * An async iterator fed synchronously: what a pub/sub listener hands to one subscriber.
 *
 * A live run with hundreds of subscribers pushes every event into hundreds of these, so a push
 * is a few array operations and no promise unless the reader is already waiting. At most
 * `backlog` undelivered values are kept; past that the oldest are dropped (the newest, such as
 * the event that ends a run, always arrive). A reader can also take everything buffered at
 * once (`takeAll`) after being told that values are there (`onAvailable`), which is how the
 * SSE fan-out serves hundreds of streams without a promise per event and stream.
 *
 * The queue ends after delivering a value for which `endsWith` is true, or when the reader
 * returns; `onClose` runs once then (the listener is removed).
 */
export interface EventQueue<T> extends AsyncIterableIterator<T> {
  readonly [EVENT_QUEUE]: true;
  /** Hands `value` to the reader, or keeps it until the reader asks. Ignored once ended. */
  push(value: T): void;
  /** Puts `value` before everything buffered (a snapshot read after listening started). */
  unshift(value: T): void;
  /** Drops what is buffered, keeps `values`, and ends after they are delivered. */
  endWith(values: readonly T[]): void;
  /** Everything buffered, in order, up to and including an ending value. */
  takeAll(): T[];
  /** Values buffered now. */
  readonly size: number;
  /** True once the last value was delivered (or the reader returned). */
  readonly done: boolean;
  /** True while the value that ends the queue is buffered: what is left is all there will be. */
  readonly ending: boolean;
  /** Called on every push that the reader was not already waiting for; null to stop. */
  onAvailable(callback: (() => void) | null): void;
  /** Values dropped because the reader fell more than `backlog` behind. */
  readonly dropped: number;
  /** Ends the queue at once (the reader leaves). */
  return(): Promise<IteratorResult<T>>;
}

const EVENT_QUEUE = Symbol('EventQueue');
// Slots a new queue starts with; enough for a snapshot and a few live events.
const INITIAL_RING_SIZE = 8;

export interface EventQueueOptions<T> {
  /** Undelivered values kept at most (the oldest are dropped past it). */
  readonly backlog: number;
  /** The queue ends after delivering a value for which this is true. */
  readonly endsWith?: (value: T) => boolean;
  /** Runs once when the queue ends or the reader returns. */
  readonly onClose?: () => void;
}

export function createEventQueue<T>({ backlog, endsWith, onClose }: EventQueueOptions<T>): EventQueue<T> {
  if (!Number.isInteger(backlog) || backlog < 1) throw new RangeError(`backlog must be a positive integer`);
  // A ring buffer: `head` is the oldest kept value, `size` how many are kept. Values pushed
  // before the front (unshift) may briefly exceed the backlog by one. The ring starts small and
  // doubles when full: most subscribers never hold more than a few values, and a ring of the
  // whole backlog per subscriber made thousands of idle subscriptions cost hundreds of MB.
  const capacity = backlog + 1;
  let ring: (T | undefined)[] = new Array<T | undefined>(Math.min(capacity, INITIAL_RING_SIZE));
  let head = 0;
  let size = 0;
  let dropped = 0;
  let waiting: ((result: IteratorResult<T>) => void) | null = null;
  let available: (() => void) | null = null;
  /** No more values are accepted (an ending value is buffered, or the reader returned). */
  let sealed = false;
  let closed = false;

  function close(): void {
    if (closed) return;
    closed = true;
    sealed = true;
    ring = [];
    size = 0;
    available = null;
    const reader = waiting;
    waiting = null;
    reader?.({ value: undefined, done: true });
    onClose?.();
  }

  function shift(): T {
    const value = ring[head] as T;
    ring[head] = undefined;
    head = (head + 1) % ring.length;
    size--;
    if (size === 0 && sealed) close();
    return value;
  }

  function dropOldest(): void {
    ring[head] = undefined;
    head = (head + 1) % ring.length;
    size--;
    dropped++;
  }

  /** Makes room for one more value if the ring may still grow; false when it is at capacity. */
  function grow(): boolean {
    if (size < ring.length) return true;
    if (ring.length >= capacity) return false;
    const larger = new Array<T | undefined>(Math.min(capacity, ring.length * 2));
    for (let i = 0; i < size; i++) larger[i] = ring[(head + i) % ring.length];
    ring = larger;
    head = 0;
    return true;
  }

  function append(value: T): void {
    if (size >= backlog) dropOldest();
    else grow();
    ring[(head + size) % ring.length] = value;
    size++;
  }

  const queue: EventQueue<T> = {
    [EVENT_QUEUE]: true,
    push(value: T): void {
      if (sealed) return;
      const ends = endsWith?.(value) ?? false;
      if (waiting) {
        const reader = waiting;
        waiting = null;
        reader({ value, done: false });
        if (ends) close();
        return;
      }
      append(value);
      if (ends) sealed = true;
      available?.();
    },
    unshift(value: T): void {
      if (closed) return;
      if (waiting) {
        const reader = waiting;
        waiting = null;
        reader({ value, done: false });
        return;
      }
      // Full: the newest stays, so the oldest buffered value makes room.
      if (!grow()) dropOldest();
      head = (head - 1 + ring.length) % ring.length;
      ring[head] = value;
      size++;
      available?.();
    },
    endWith(values: readonly T[]): void {
      if (closed) return;
      ring = new Array<T | undefined>(Math.min(capacity, INITIAL_RING_SIZE));
      head = 0;
      size = 0;
      sealed = true;
      if (values.length === 0) return close();
      for (const value of values) append(value);
      if (waiting) {
        const reader = waiting;
        waiting = null;
        reader({ value: shift(), done: false });
      } else {
        available?.();
      }
    },
    takeAll(): T[] {
      const values: T[] = [];
      while (size > 0) values.push(shift());
      return values;
    },
    get size() {
      return size;
    },
    get done() {
      return closed;
    },
    get ending() {
      return sealed && !closed;
    },
    onAvailable(callback: (() => void) | null): void {
      available = callback;
    },
    get dropped() {
      return dropped;
    },
    next(): Promise<IteratorResult<T>> {
      if (size > 0) return Promise.resolve({ value: shift(), done: false });
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

/** True for queues made by createEventQueue (they can be drained without promises). */
export function isEventQueue<T = unknown>(value: unknown): value is EventQueue<T> {
  return typeof value === 'object' && value !== null && EVENT_QUEUE in value;
}
