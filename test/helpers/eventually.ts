/** `expectEventually`: retry an assertion until it passes, instead of sleeping in tests. */
import { setTimeout as delay } from 'node:timers/promises';

/** Options of `expectEventually`. */
export interface EventuallyOptions {
  /** Give up after this long; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Wait between attempts; default 50 ms. */
  readonly intervalMs?: number;
}

/** Calls `assertion` until it stops throwing and returns its value; rethrows its last error on timeout. */
export async function expectEventually<T>(
  assertion: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 50 }: EventuallyOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
    }
    await delay(intervalMs);
  }
}
