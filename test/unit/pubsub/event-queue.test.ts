import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createEventQueue, isEventQueue } from '../../../src/pubsub/event-queue.js';

async function drain<T>(queue: AsyncIterator<T>, count: number): Promise<T[]> {
  const values: T[] = [];
  for (let i = 0; i < count; i++) {
    const next = await queue.next();
    if (next.done) break;
    values.push(next.value);
  }
  return values;
}

describe('createEventQueue', () => {
  it('hands a pushed value to a reader that is already waiting', async () => {
    const queue = createEventQueue<number>({ backlog: 4 });
    const pending = queue.next();
    queue.push(1);
    expect(await pending).toEqual({ value: 1, done: false });
    expect(isEventQueue(queue)).toBe(true);
    expect(isEventQueue({ next: () => null })).toBe(false);
  });

  it('keeps values in order until read, by next() or all at once', async () => {
    const queue = createEventQueue<number>({ backlog: 4 });
    for (const n of [1, 2, 3]) queue.push(n);
    expect(await drain(queue, 2)).toEqual([1, 2]);
    queue.push(4);
    expect(queue.takeAll()).toEqual([3, 4]);
    expect(queue.takeAll()).toEqual([]);
  });

  it('drops the oldest values past the backlog, keeping the newest in order', async () => {
    const queue = createEventQueue<number>({ backlog: 3 });
    for (let n = 1; n <= 10; n++) queue.push(n);
    expect(queue.dropped).toBe(7);
    expect(await drain(queue, 3)).toEqual([8, 9, 10]);
    // Wrapping around the ring keeps working after reads.
    for (let n = 11; n <= 15; n++) queue.push(n);
    expect(queue.takeAll()).toEqual([13, 14, 15]);
  });

  it('puts an unshifted value first, even when the backlog is full', () => {
    const queue = createEventQueue<number>({ backlog: 2 });
    for (const n of [1, 2]) queue.push(n);
    queue.unshift(0);
    expect(queue.takeAll()).toEqual([0, 1, 2]);
    for (const n of [3, 4]) queue.push(n);
    queue.unshift(-1);
    // Full: the front value makes room, so the newest values and the new front remain.
    queue.unshift(-2);
    expect(queue.takeAll()).toEqual([-2, 3, 4]);
  });

  it('ends after delivering an ending value, and ignores what is pushed after it', async () => {
    let closes = 0;
    const queue = createEventQueue<string>({
      backlog: 8,
      endsWith: (v) => v === 'end',
      onClose: () => closes++,
    });
    expect(queue.ending).toBe(false);
    for (const v of ['a', 'end', 'late']) queue.push(v);
    expect(queue.ending).toBe(true);
    expect(closes).toBe(0);
    expect(await drain(queue, 5)).toEqual(['a', 'end']);
    expect(queue.done).toBe(true);
    expect(queue.ending).toBe(false);
    expect(closes).toBe(1);

    const waiting = createEventQueue<string>({ backlog: 8, endsWith: (v) => v === 'end' });
    const next = waiting.next();
    waiting.push('end');
    expect(await next).toEqual({ value: 'end', done: false });
    expect(await waiting.next()).toEqual({ value: undefined, done: true });
  });

  it('endWith replaces what is buffered and ends after it', async () => {
    const queue = createEventQueue<string>({ backlog: 8 });
    for (const v of ['stale-1', 'stale-2']) queue.push(v);
    queue.endWith(['snapshot']);
    queue.push('live');
    expect(queue.takeAll()).toEqual(['snapshot']);
    expect(queue.done).toBe(true);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
  });

  it('tells a draining reader when values arrive', () => {
    const queue = createEventQueue<number>({ backlog: 4 });
    let calls = 0;
    queue.onAvailable(() => calls++);
    queue.push(1);
    queue.unshift(0);
    expect(calls).toBe(2);
    queue.onAvailable(null);
    queue.push(2);
    expect(calls).toBe(2);
    expect(queue.takeAll()).toEqual([0, 1, 2]);
  });

  it('ends a waiting reader and calls onClose once when returned; later pushes are ignored', async () => {
    let closes = 0;
    const queue = createEventQueue<number>({ backlog: 2, onClose: () => closes++ });
    const pending = queue.next();
    await queue.return();
    await queue.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    queue.push(1);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
    expect(closes).toBe(1);
  });

  it('refuses a second concurrent read and a backlog that is not a positive integer', async () => {
    const queue = createEventQueue<number>({ backlog: 2 });
    void queue.next();
    await expect(queue.next()).rejects.toThrow(/pending/);
    expect(() => createEventQueue({ backlog: 0 })).toThrow(RangeError);
  });

  it('allocates its ring as values arrive: 5,000 idle queues with a 4,096 backlog hold under 20 MB', () => {
    const before = usedHeap();
    const queues = Array.from({ length: 5000 }, () => createEventQueue<number>({ backlog: 4096 }));
    queues.forEach((queue, n) => queue.push(n));
    expect(usedHeap() - before).toBeLessThan(20 * 1024 * 1024);
    expect(queues[4999]!.takeAll()).toEqual([4999]);
  });

  it('keeps order and drops the oldest past the backlog while its ring grows', () => {
    const queue = createEventQueue<number>({ backlog: 100 });
    for (let n = 1; n <= 30; n++) queue.push(n);
    expect(queue.takeAll()).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    for (let n = 1; n <= 250; n++) queue.push(n);
    queue.unshift(0);
    expect(queue.takeAll()).toEqual([0, ...Array.from({ length: 100 }, (_, i) => i + 151)]);
    expect(queue.dropped).toBe(150);
  });
});

/** The heap in use after a full collection. */
function usedHeap(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}
