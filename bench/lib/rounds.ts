/**
 * B1's rounds: every segment (the control plane, the raw floors, the peer tool) runs once per
 * round on a fresh database, in an order rotated each round, so no segment always runs on the disk
 * its predecessor left busy. Ratios are taken within a round, never between figures of different
 * rounds: the machine's speed moves by tens of percent between minutes.
 */

/**
 * The B1 segments; `cp` is the control plane, `raw1`/`raw4` the raw floors, `npm` node-pg-migrate,
 * `engine` the engine's own move of each tenant without the control plane (bench/lib/engine-floor.ts).
 */
export const B1_SEGMENTS = ['cp', 'raw1', 'raw4', 'npm', 'engine'] as const;
export type B1Segment = (typeof B1_SEGMENTS)[number];
/** The segments that are a raw floor; the best of them in a round is that round's floor. */
const FLOOR_SEGMENTS: readonly B1Segment[] = ['raw1', 'raw4'];

/** One round's throughput per segment, in tenants per second. */
export interface RoundRates {
  readonly round: number;
  readonly rates: Partial<Record<B1Segment, number>>;
}

/** Median with the range it was taken from. */
export interface MedianRange {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** The order of round `round` (0-based): the segments rotated left by `round`. */
export function segmentOrder<T>(segments: readonly T[], round: number): T[] {
  const shift = round % segments.length;
  return [...segments.slice(shift), ...segments.slice(0, shift)];
}

/** Median (mean of the middle two for an even count), min and max; NaN for no samples. */
export function medianRange(samples: readonly number[]): MedianRange {
  if (samples.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[middle] as number)
      : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number };
}

/**
 * Medians of every segment's rate, and of the per-round ratios: the control plane's to the best
 * floor and to the peer, the engine's to the best floor (the most a control plane on this engine
 * could reach: what the tenant database must do for it, and nothing else) and the control plane's
 * to the engine (what the control plane's own work costs on top).
 */
export function summarizeRounds(rounds: readonly RoundRates[]) {
  const ratios = rounds.map(({ round, rates }) => {
    const floors = FLOOR_SEGMENTS.map((s) => rates[s]).filter((v): v is number => v !== undefined);
    const floor = floors.length > 0 ? Math.max(...floors) : undefined;
    const cp = rates.cp;
    return {
      round,
      floor,
      toFloor: cp !== undefined && floor !== undefined ? cp / floor : undefined,
      toPeer: cp !== undefined && rates.npm !== undefined ? cp / rates.npm : undefined,
      engineToFloor: rates.engine !== undefined && floor !== undefined ? rates.engine / floor : undefined,
      toEngine: cp !== undefined && rates.engine !== undefined ? cp / rates.engine : undefined,
    };
  });
  const defined = (values: (number | undefined)[]) => values.filter((v): v is number => v !== undefined);
  const rates = Object.fromEntries(
    B1_SEGMENTS.map((segment) => [segment, medianRange(defined(rounds.map((r) => r.rates[segment])))]),
  ) as Record<B1Segment, MedianRange>;
  return {
    rates,
    ratios,
    toFloor: medianRange(defined(ratios.map((r) => r.toFloor))),
    toPeer: medianRange(defined(ratios.map((r) => r.toPeer))),
    engineToFloor: medianRange(defined(ratios.map((r) => r.engineToFloor))),
    toEngine: medianRange(defined(ratios.map((r) => r.toEngine))),
  };
}
export type RoundsSummary = ReturnType<typeof summarizeRounds>;
