import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from '../../../bench/lib/options.js';
import { percentile, round, summarize } from '../../../bench/lib/stats.js';

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
    });
  });

  it('refuses unknown options, cases and non-positive sizes with the usage', () => {
    expect(() => parseBenchOptions(['--tenant', '5'])).toThrow(/unknown option --tenant/);
    expect(() => parseBenchOptions(['--cases', 'B9'])).toThrow(/unknown case B9/);
    expect(() => parseBenchOptions(['--tenants', '0'])).toThrow(/--tenants must be a positive integer/);
    expect(() => parseBenchOptions(['stray'])).toThrow(/usage: npm run bench/);
  });
});
