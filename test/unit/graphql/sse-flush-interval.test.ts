import { describe, expect, it } from 'vitest';
import {
  SSE_FLUSH_INTERVAL_MAX_MS,
  SSE_FLUSH_INTERVAL_MIN_MS,
  SSE_WRITES_PER_SECOND,
  sseFlushIntervalMs,
} from '../../../src/graphql/subscription-fanout.js';

describe('sseFlushIntervalMs', () => {
  it('writes often for a few streams and keeps the total write rate bounded for many', () => {
    expect(sseFlushIntervalMs(1)).toBe(SSE_FLUSH_INTERVAL_MIN_MS);
    expect(sseFlushIntervalMs(250)).toBe(SSE_FLUSH_INTERVAL_MIN_MS);
    expect(sseFlushIntervalMs(400)).toBe(40);
    expect(sseFlushIntervalMs(500)).toBe(SSE_FLUSH_INTERVAL_MAX_MS);
    expect(sseFlushIntervalMs(50_000)).toBe(SSE_FLUSH_INTERVAL_MAX_MS);
    for (const streams of [260, 300, 480]) {
      expect((streams * 1000) / sseFlushIntervalMs(streams)).toBeCloseTo(SSE_WRITES_PER_SECOND);
    }
  });
});
