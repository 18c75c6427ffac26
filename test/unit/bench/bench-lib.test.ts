import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from '../../../bench/lib/options.js';
import { percentile, round, summarize } from '../../../bench/lib/stats.js';
import { medianRange, segmentOrder, summarizeRounds } from '../../../bench/lib/rounds.js';

describe('bench statistics', () => {
  it('takes nearest-rank percentiles of sorted samples', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile(samples, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarises unsorted samples', () => {
    expect(summarize([5, 1, 3])).toEqual({ count: 3, min: 1, p50: 3, p95: 5, p99: 5, max: 5, mean: 3 });
  });

  it('rounds to three significant digits below 100 and to integers above', () => {
    expect(round(0.074356)).toBe(0.0744);
    expect(round(40.312)).toBe(40.3);
    expect(round(398.6)).toBe(399);
  });
});

describe('bench options', () => {
  it('has the issue sizes by default and tiny ones with --quick', () => {
    expect(parseBenchOptions([])).toMatchObject({
      tenants: 1000,
      queryTenants: 10_000,
      provisions: 100,
      subscribers: 500,
      fanoutTargets: 1000,
    });
    expect(parseBenchOptions(['--quick'])).toMatchObject({ tenants: 20, subscribers: 10 });
    expect(parseBenchOptions(['--cases', 'b1,B5', '--tenants', '10000', '--skip-baselines'])).toMatchObject({
      cases: ['B1', 'B5'],
      tenants: 10000,
      skipBaselines: true,
      skipTemplates: false,
    });
    expect(parseBenchOptions(['--cases', 'B2', '--skip-templates'])).toMatchObject({ skipTemplates: true });
  });

  it('refuses unknown options, cases and non-positive sizes with the usage', () => {
    expect(() => parseBenchOptions(['--tenant', '5'])).toThrow(/unknown option --tenant/);
    expect(() => parseBenchOptions(['--cases', 'B9'])).toThrow(/unknown case B9/);
    expect(() => parseBenchOptions(['--tenants', '0'])).toThrow(/--tenants must be a positive integer/);
    expect(() => parseBenchOptions(['stray'])).toThrow(/usage: npm run bench/);
  });
});

describe('bench rounds', () => {
  it('runs 3 rounds by default, 1 with --quick, and takes --rounds', () => {
    expect(parseBenchOptions([]).rounds).toBe(3);
    expect(parseBenchOptions(['--quick']).rounds).toBe(1);
    expect(parseBenchOptions(['--rounds', '5']).rounds).toBe(5);
    expect(() => parseBenchOptions(['--rounds', '0'])).toThrow(/--rounds must be a positive integer/);
  });

  it('rotates the segment order so each segment takes every position', () => {
    const segments = ['cp', 'raw1', 'raw4', 'npm'] as const;
    const orders = [0, 1, 2, 3].map((round) => segmentOrder(segments, round));
    expect(orders[0]).toEqual(['cp', 'raw1', 'raw4', 'npm']);
    expect(orders[1]).toEqual(['raw1', 'raw4', 'npm', 'cp']);
    for (const [position] of segments.entries())
      expect(new Set(orders.map((order) => order[position])).size).toBe(segments.length);
  });

  it('takes each round’s ratio against the best floor of that same round', () => {
    const summary = summarizeRounds([
      { round: 1, rates: { cp: 40, raw1: 50, raw4: 80, npm: 20 } },
      { round: 2, rates: { cp: 30, raw1: 40, raw4: 20, npm: 15 } },
      { round: 3, rates: { cp: 45, raw1: 45, raw4: 60, npm: 30 } },
    ]);
    expect(summary.ratios.map((r) => r.toFloor)).toEqual([0.5, 0.75, 0.75]);
    expect(summary.ratios.map((r) => r.toPeer)).toEqual([2, 2, 1.5]);
    // A ratio of medians taken from different rounds (40 / 50 = 0.8) would hide the spread.
    expect(summary.toFloor).toEqual({ median: 0.75, min: 0.5, max: 0.75 });
    expect(summary.rates.raw4).toEqual({ median: 60, min: 20, max: 80 });
    expect(summary.rates.cp).toEqual({ median: 40, min: 30, max: 45 });
  });

  it('takes the engine segment’s ceiling and the control plane’s share of it per round', () => {
    const summary = summarizeRounds([
      { round: 1, rates: { cp: 40, raw1: 50, raw4: 80, npm: 20, engine: 60 } },
      { round: 2, rates: { cp: 30, raw1: 40, raw4: 20, npm: 15, engine: 30 } },
      { round: 3, rates: { cp: 45, raw1: 45, raw4: 60, npm: 30, engine: 54 } },
    ]);
    // The engine is never a floor: round 2's best floor stays raw1 (40), not the engine's 30.
    expect(summary.ratios.map((r) => r.floor)).toEqual([80, 40, 60]);
    expect(summary.ratios.map((r) => r.engineToFloor)).toEqual([0.75, 0.75, 0.9]);
    expect(summary.ratios.map((r) => r.toEngine)).toEqual([40 / 60, 1, 45 / 54]);
    expect(summary.engineToFloor).toEqual({ median: 0.75, min: 0.75, max: 0.9 });
    expect(summary.toEngine).toEqual({ median: 45 / 54, min: 40 / 60, max: 1 });
    // Rounds without an engine segment (--skip-baselines) have no ceiling.
    expect(summarizeRounds([{ round: 1, rates: { cp: 40 } }]).engineToFloor.median).toBeNaN();
  });

  it('takes the median of an even count as the mean of the middle two', () => {
    expect(medianRange([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4 });
  });
});
