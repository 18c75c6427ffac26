import { describe, expect, it } from 'vitest';
import { createEventQueue } from '../../../src/pubsub/event-queue.js';

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
    const queue = createEventQueue<number>(4);
    const pending = queue.next();
    queue.push(1);
    expect(await pending).toEqual({ value: 1, done: false });
  });

  it('keeps values in order until read', async () => {
    const queue = createEventQueue<number>(4);
    for (const n of [1, 2, 3]) queue.push(n);
    expect(await drain(queue, 3)).toEqual([1, 2, 3]);
  });

  it('drops the oldest values past the backlog, keeping the newest in order', async () => {
    const queue = createEventQueue<number>(3);
    for (let n = 1; n <= 10; n++) queue.push(n);
    expect(queue.dropped).toBe(7);
    expect(await drain(queue, 3)).toEqual([8, 9, 10]);
    // Wrapping around the ring keeps working after reads.
    for (let n = 11; n <= 15; n++) queue.push(n);
    expect(await drain(queue, 3)).toEqual([13, 14, 15]);
  });

  it('ends a waiting reader and calls onClose once when returned; later pushes are ignored', async () => {
    let closes = 0;
    const queue = createEventQueue<number>(2, () => closes++);
    const pending = queue.next();
    await queue.return!();
    await queue.return!();
    expect(await pending).toEqual({ value: undefined, done: true });
    queue.push(1);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
    expect(closes).toBe(1);
  });

  it('refuses a second concurrent read and a backlog that is not a positive integer', async () => {
    const queue = createEventQueue<number>(2);
    void queue.next();
    await expect(queue.next()).rejects.toThrow(/pending/);
    expect(() => createEventQueue(0)).toThrow(RangeError);
  });
});
