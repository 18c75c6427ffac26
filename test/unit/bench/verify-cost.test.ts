import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from '../../../bench/lib/options.js';
import {
  cpuDeltaByDatabase,
  summarizeVerifyRounds,
  type B7SegmentRun,
} from '../../../bench/lib/verify-cost.js';

describe('B7 CPU between two samples of the PostgreSQL backends', () => {
  it('counts a backend’s difference, all of a new one, and nothing of one that ended', () => {
    const before = new Map([
      [10, { database: 'tenants', seconds: 5 }],
      [11, { database: 'cp', seconds: 2 }],
      // Ended between the samples (an idle pool connection closed): not subtracted.
      [12, { database: 'tenants', seconds: 40 }],
    ]);
    const after = new Map([
      [10, { database: 'tenants', seconds: 7.5 }],
      [11, { database: 'cp', seconds: 2.25 }],
      // Started between the samples.
      [13, { database: 'tenants', seconds: 1 }],
    ]);
    expect(cpuDeltaByDatabase(before, after)).toEqual(
      new Map([
        ['tenants', 3.5],
        ['cp', 0.25],
      ]),
    );
  });

  it('takes a reused pid (another database, or fewer seconds) as a new backend', () => {
    const before = new Map([
      [20, { database: 'cp', seconds: 9 }],
      [21, { database: 'tenants', seconds: 9 }],
    ]);
    const after = new Map([
      [20, { database: 'tenants', seconds: 1 }],
      [21, { database: 'tenants', seconds: 0.5 }],
    ]);
    expect(cpuDeltaByDatabase(before, after)).toEqual(new Map([['tenants', 1.5]]));
  });
});

describe('B7 rounds', () => {
  const run = (
    round: number,
    segment: B7SegmentRun['segment'],
    tenantsPerSecond: number,
    cpuMsPerTenant: Record<string, number>,
  ): B7SegmentRun => ({ round, segment, tenantsPerSecond, cpuMsPerTenant });

  it('takes each round’s ratio of the VERIFY run to the bare reads of that same round', () => {
    const summary = summarizeVerifyRounds([
      run(1, 'verify', 50, { worker: 6, 'PostgreSQL (tenant DB)': 3 }),
      run(1, 'bare', 200, { 'PostgreSQL (tenant DB)': 2 }),
      run(2, 'bare', 100, { 'PostgreSQL (tenant DB)': 2.5 }),
      run(2, 'verify', 40, { worker: 8, 'PostgreSQL (tenant DB)': 4 }),
      run(3, 'verify', 30, { worker: 7, 'PostgreSQL (tenant DB)': 3.5 }),
      run(3, 'bare', 60, { 'PostgreSQL (tenant DB)': 3 }),
    ]);
    expect(summary.ratios).toEqual([
      { round: 1, ratio: 0.25 },
      { round: 2, ratio: 0.4 },
      { round: 3, ratio: 0.5 },
    ]);
    // Not the ratio of the medians (40 / 100): within a round only.
    expect(summary.toBare).toEqual({ median: 0.4, min: 0.25, max: 0.5 });
    expect(summary.rates.verify).toEqual({ median: 40, min: 30, max: 50 });
    expect(summary.rates.bare).toEqual({ median: 100, min: 60, max: 200 });
    expect(summary.cpuMsPerTenant.verify).toEqual({
      worker: { median: 7, min: 6, max: 8 },
      'PostgreSQL (tenant DB)': { median: 3.5, min: 3, max: 4 },
    });
    expect(summary.cpuMsPerTenant.bare).toEqual({
      'PostgreSQL (tenant DB)': { median: 2.5, min: 2, max: 3 },
    });
  });

  it('leaves out a round that lacks one of the two segments', () => {
    const summary = summarizeVerifyRounds([
      run(1, 'verify', 50, {}),
      run(1, 'bare', 100, {}),
      run(2, 'verify', 10, {}),
    ]);
    expect(summary.ratios).toEqual([{ round: 1, ratio: 0.5 }]);
  });
});

describe('B7 options', () => {
  it('migrates the five-file catalog by default and takes --verify-catalog catalog-50', () => {
    expect(parseBenchOptions([]).verifyCatalog).toBe('catalog');
    expect(parseBenchOptions(['--cases', 'B7', '--verify-catalog', 'catalog-50']).verifyCatalog).toBe(
      'catalog-50',
    );
    expect(() => parseBenchOptions(['--verify-catalog', '../catalog'])).toThrow(
      /--verify-catalog must be one of/,
    );
  });
});
