import { describe, expect, it } from 'vitest';
import {
  EMPTY_COUNTS,
  countTarget,
  countsOfRun,
  decideRun,
  moveTarget,
  progressDelta,
  progressOf,
  windowSlots,
} from '../../../src/runs/run-decisions.js';
import type { RunLimits, TargetCounts } from '../../../src/runs/run-decisions.js';

const run = (over: Partial<RunLimits> = {}): RunLimits => ({
  status: 'RUNNING',
  concurrency: 4,
  maxFailures: null,
  canarySize: null,
  ...over,
});
const counts = (over: Partial<TargetCounts>): TargetCounts => ({ ...EMPTY_COUNTS, ...over });

describe('windowSlots', () => {
  it('fills up to concurrency minus what is queued or running, bounded by what is pending', () => {
    expect(windowSlots(4, { pending: 10, queued: 1, running: 1 })).toBe(2);
    expect(windowSlots(4, { pending: 1, queued: 0, running: 0 })).toBe(1);
    expect(windowSlots(4, { pending: 10, queued: 2, running: 3 })).toBe(0);
  });
});

describe('decideRun', () => {
  it('admits the next targets while nothing stops the run', () => {
    expect(decideRun(run(), counts({ pending: 10, running: 1 }))).toEqual({
      halt: false,
      admit: 3,
      canaryOnly: false,
      endStatus: null,
    });
  });

  it('admits only canary targets while the canary wave is unfinished', () => {
    const decision = decideRun(
      run({ canarySize: 2 }),
      counts({ pending: 9, running: 1, canaryUnfinished: 1 }),
    );
    expect(decision).toMatchObject({ canaryOnly: true, admit: 3 });
  });

  it('halts on a failed canary while work is waiting, ending once nothing runs', () => {
    expect(
      decideRun(run({ canarySize: 2 }), counts({ pending: 8, failed: 1, canaryFailed: 1, running: 1 })),
    ).toMatchObject({
      halt: true,
      admit: 0,
      endStatus: null,
    });
    expect(
      decideRun(run({ canarySize: 2 }), counts({ pending: 8, failed: 1, canaryFailed: 1 })),
    ).toMatchObject({
      halt: true,
      endStatus: 'HALTED',
    });
  });

  it('halts when failures reach maxFailures', () => {
    expect(decideRun(run({ maxFailures: 2 }), counts({ pending: 5, failed: 2 }))).toMatchObject({
      halt: true,
    });
    expect(decideRun(run({ maxFailures: 3 }), counts({ pending: 5, failed: 2 }))).toMatchObject({
      halt: false,
    });
  });

  it('ends SUCCEEDED or FAILED when nothing is left', () => {
    expect(decideRun(run(), counts({ succeeded: 3 })).endStatus).toBe('SUCCEEDED');
    expect(decideRun(run({ maxFailures: 1 }), counts({ succeeded: 2, failed: 1 })).endStatus).toBe('FAILED');
  });

  it('ends a cancelled or halted run once its running targets end, and never admits', () => {
    expect(decideRun(run({ status: 'CANCELLED' }), counts({ running: 1, cancelled: 3 }))).toMatchObject({
      admit: 0,
      endStatus: null,
    });
    expect(decideRun(run({ status: 'HALTED' }), counts({ skipped: 3, failed: 2 })).endStatus).toBe('HALTED');
  });
});

describe('progress', () => {
  it('reports queued targets as pending', () => {
    let c = EMPTY_COUNTS;
    c = countTarget(c, 'PENDING', false, 2);
    c = countTarget(c, 'QUEUED', true, 1);
    c = countTarget(c, 'RUNNING', true, 1);
    c = countTarget(c, 'FAILED', true, 1);
    expect(c).toMatchObject({ canaryUnfinished: 2, canaryFailed: 1 });
    expect(progressOf(c)).toEqual({
      total: 5,
      pending: 3,
      running: 1,
      succeeded: 0,
      failed: 1,
      skipped: 0,
      cancelled: 0,
    });
  });
});

describe('counters by delta', () => {
  const stored = { total: 10, pending: 6, running: 2, succeeded: 1, failed: 1, skipped: 0, cancelled: 0 };

  it('splits the stored pending (which includes queued) with the counted queued', () => {
    const c = countsOfRun(stored, { queued: 2, canaryUnfinished: 1, canaryFailed: 0 });
    expect(c).toMatchObject({ pending: 4, queued: 2, running: 2, succeeded: 1, failed: 1 });
    expect(progressOf(c)).toEqual(stored);
  });

  it('moves one target between statuses, canary counts included', () => {
    const c = countsOfRun(stored, { queued: 2, canaryUnfinished: 1, canaryFailed: 0 });
    expect(moveTarget(c, 'RUNNING', 'FAILED', true)).toMatchObject({
      running: 1,
      failed: 2,
      canaryUnfinished: 0,
      canaryFailed: 1,
    });
    expect(moveTarget(c, 'RUNNING', 'RUNNING', false)).toBe(c);
  });

  it('gives the stored-counter delta of a move: QUEUED to RUNNING leaves pending to running', () => {
    expect(progressDelta('QUEUED', 'RUNNING')).toMatchObject({ pending: -1, running: 1, total: 0 });
    expect(progressDelta('PENDING', 'QUEUED')).toMatchObject({ pending: 0, running: 0 });
    expect(progressDelta('RUNNING', 'SUCCEEDED')).toMatchObject({ running: -1, succeeded: 1 });
    expect(progressDelta('QUEUED', 'FAILED')).toMatchObject({ pending: -1, failed: 1 });
  });
});
