/**
 * B7's floor and accounting: the bare cost of a VERIFY run's reads (each tenant schema's
 * fingerprint read on plain pooled connections, with no control plane around it), and CPU per
 * database between two samples of the PostgreSQL backends, which survives backends that start or
 * end between them (an idle pool connection closes after 30 s, and with it its CPU total).
 */
import pg from 'pg';
import { readSchemaFingerprint } from '../../src/fingerprints/read-schema.js';
import { medianRange, type MedianRange } from './rounds.js';
import { postgresCpuByBackend } from './stack.js';

/** B7's two segments: the VERIFY run through the control plane, and the bare reads. */
export const B7_SEGMENTS = ['verify', 'bare'] as const;
export type B7Segment = (typeof B7_SEGMENTS)[number];

/** One segment of one B7 round: its throughput and CPU per tenant by process. */
export interface B7SegmentRun {
  readonly round: number;
  readonly segment: B7Segment;
  readonly tenantsPerSecond: number;
  readonly cpuMsPerTenant: Readonly<Record<string, number>>;
}

/**
 * Medians (with ranges) of each segment's tenants/s and CPU per tenant by process, and of the
 * per-round ratio VERIFY / bare: taken within a round only, since the machine's speed moves
 * between minutes.
 */
export function summarizeVerifyRounds(runs: readonly B7SegmentRun[]) {
  const of = (segment: B7Segment) => runs.filter((r) => r.segment === segment);
  const rates = Object.fromEntries(
    B7_SEGMENTS.map((segment) => [segment, medianRange(of(segment).map((r) => r.tenantsPerSecond))]),
  ) as Record<B7Segment, MedianRange>;
  const cpuMsPerTenant = Object.fromEntries(
    B7_SEGMENTS.map((segment) => {
      const labels = [...new Set(of(segment).flatMap((r) => Object.keys(r.cpuMsPerTenant)))];
      const byLabel = labels.map((label) => [
        label,
        medianRange(of(segment).flatMap((r) => r.cpuMsPerTenant[label] ?? [])),
      ]);
      return [segment, Object.fromEntries(byLabel) as Record<string, MedianRange>];
    }),
  ) as Record<B7Segment, Record<string, MedianRange>>;
  const ratios: { round: number; ratio: number }[] = [];
  for (const round of new Set(runs.map((r) => r.round))) {
    const verify = runs.find((r) => r.round === round && r.segment === 'verify');
    const bare = runs.find((r) => r.round === round && r.segment === 'bare');
    if (verify && bare) ratios.push({ round, ratio: verify.tenantsPerSecond / bare.tenantsPerSecond });
  }
  return { rates, cpuMsPerTenant, ratios, toBare: medianRange(ratios.map((r) => r.ratio)) };
}

/** One PostgreSQL backend's CPU so far and its database. */
export interface BackendCpu {
  readonly database: string;
  readonly seconds: number;
}

/**
 * CPU seconds per database spent between two samples by pid: a backend in both (same database,
 * not fewer seconds) counts its difference, one that started since counts all of its own, one that
 * ended since counts nothing (its last seconds are lost, never subtracted).
 */
export function cpuDeltaByDatabase(
  before: ReadonlyMap<number, BackendCpu>,
  after: ReadonlyMap<number, BackendCpu>,
): Map<string, number> {
  const totals = new Map<string, number>();
  for (const [pid, now] of after) {
    const then = before.get(pid);
    const same = then !== undefined && then.database === now.database && then.seconds <= now.seconds;
    const used = same ? now.seconds - then.seconds : now.seconds;
    totals.set(now.database, (totals.get(now.database) ?? 0) + used);
  }
  return totals;
}

/** What the bare reads cost. */
export interface BareReadsResult {
  readonly seconds: number;
  /** CPU seconds of this Node process while reading. */
  readonly nodeCpuSeconds: number;
  /** CPU seconds of the PostgreSQL backends per database while reading. */
  readonly postgresCpuSeconds: ReadonlyMap<string, number>;
  /** How many schemas' fingerprints had `expectedHash`. */
  readonly matching: number;
}

/** Connections that read fingerprints with nothing around them: B7's floor. */
export interface BareReaders {
  /** Reads each schema's fingerprint once, the connections sharing the list; what it cost. */
  read(schemas: readonly string[], expectedHash: string): Promise<BareReadsResult>;
  close(): Promise<void>;
}

/**
 * Opens `connections` connections that read fingerprints with `readSchemaFingerprint` (the read a
 * VERIFY target makes), held open from one round to the next as the worker's pool holds its own:
 * a backend that read a schema before has its catalog entries cached, so both sides must have
 * that chance. Each connection's one-off PREPARE is made here, off the clock.
 */
export async function openBareReaders(input: {
  readonly url: string;
  readonly connections: number;
  readonly ledgerTable: string;
}): Promise<BareReaders> {
  const { ledgerTable } = input;
  const pool = new pg.Pool({ connectionString: input.url, max: input.connections });
  const clients = await Promise.all(Array.from({ length: input.connections }, () => pool.connect()));
  const close = async () => {
    for (const client of clients) client.release();
    await pool.end();
  };
  try {
    // A read of a schema that does not exist prepares the statement.
    await Promise.all(
      clients.map((client) => readSchemaFingerprint(client, 'b7_no_such_schema', ledgerTable)),
    );
  } catch (error) {
    await close();
    throw error;
  }
  return {
    async read(schemas, expectedHash) {
      let next = 0;
      let matching = 0;
      const backendsBefore = await postgresCpuByBackend();
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      await Promise.all(
        clients.map(async (client) => {
          for (let i = next++; i < schemas.length; i = next++) {
            const fingerprint = await readSchemaFingerprint(client, schemas[i] as string, ledgerTable);
            if (fingerprint.hash === expectedHash) matching++;
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const postgresCpuSeconds = cpuDeltaByDatabase(backendsBefore, await postgresCpuByBackend());
      return { seconds, nodeCpuSeconds: (cpu.user + cpu.system) / 1e6, postgresCpuSeconds, matching };
    },
    close,
  };
}
