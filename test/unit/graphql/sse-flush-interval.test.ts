import { describe, expect, it } from 'vitest';
import {
  SSE_FLUSH_INTERVAL_MAX_MS,
  SSE_FLUSH_INTERVAL_MIN_MS,
  SSE_WRITE_SHARE,
  SSE_WRITES_PER_SECOND,
  sseFlushIntervalMs,
} from '../../../src/graphql/subscription-fanout.js';

describe('sseFlushIntervalMs', () => {
  it('writes often for a few streams and keeps the total write rate bounded for many', () => {
    expect(sseFlushIntervalMs(1)).toBe(SSE_FLUSH_INTERVAL_MIN_MS);
    expect(sseFlushIntervalMs(250)).toBe(SSE_FLUSH_INTERVAL_MIN_MS);
    expect(sseFlushIntervalMs(400)).toBe(40);
    expect(sseFlushIntervalMs(500)).toBe(50);
    expect(sseFlushIntervalMs(50_000)).toBe(SSE_FLUSH_INTERVAL_MAX_MS);
    for (const streams of [260, 300, 480, 1000]) {
      expect((streams * 1000) / sseFlushIntervalMs(streams)).toBeCloseTo(SSE_WRITES_PER_SECOND);
    }
  });

  it('spaces the writes further when each costs more, so that they keep to their share of the time', () => {
    // 500 streams at 0.04 ms a write: 20 ms of writes per batch, a batch every 80 ms.
    expect(sseFlushIntervalMs(500, 0.04)).toBeCloseTo(80);
    expect((500 * 0.04) / sseFlushIntervalMs(500, 0.04)).toBeCloseTo(SSE_WRITE_SHARE);
    // A few streams still write at the shortest interval; a very slow machine at the longest.
    expect(sseFlushIntervalMs(5, 0.2)).toBe(SSE_FLUSH_INTERVAL_MIN_MS);
    expect(sseFlushIntervalMs(500, 0.5)).toBe(SSE_FLUSH_INTERVAL_MAX_MS);
  });
});
