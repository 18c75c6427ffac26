/**
 * `npm run bench`: the control plane against the raw floor and a peer tool, on this machine, in
 * one run. Prints a table and writes bench/results/<timestamp>.json. See README "Performance".
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, totalmem, platform, release } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config.js';
import { createExpectedFingerprintStore } from '../src/fingerprints/expected-fingerprint-store.js';
import { createExpectedFingerprints } from '../src/fingerprints/expected-fingerprints.js';
import { loadCatalog, migrateControlPlane, type MigrationCatalog } from '../src/migrations/index.js';
import { benchBackupCost } from './lib/backup-cost.js';
import { benchProvisionerCost } from './lib/provisioner-cost.js';
import { runNodePgMigrate, runRawFloor } from './lib/baselines.js';
import { ENGINE_SCHEMA_MARKER, runEngineFloor } from './lib/engine-floor.js';
import {
  gql,
  jsonStringField,
  subscribeSse,
  subscribeSseRaw,
  type GraphqlEndpoint,
} from './lib/graphql-client.js';
import { parseBenchOptions, type BenchOptions } from './lib/options.js';
import { createSchemas, seedMigratedSchemaTenants, seedSchemaTenants } from './lib/seed.js';
import {
  B7_SEGMENTS,
  cpuDeltaByDatabase,
  openBareReaders,
  summarizeVerifyRounds,
  type B7SegmentRun,
  type BareReaders,
} from './lib/verify-cost.js';
import {
  answers,
  databaseUrl,
  deleteRedisKeys,
  postgresCpuByBackend,
  postgresCpuByDatabase,
  postgresServerCpuSeconds,
  dropDatabases,
  freePort,
  recreateDatabases,
  settle,
  startService,
  type ServiceProcess,
} from './lib/stack.js';
import {
  B1_SEGMENTS,
  medianRange,
  segmentOrder,
  summarizeRounds,
  type B1Segment,
  type MedianRange,
  type RoundRates,
} from './lib/rounds.js';
import { percentile, round, summarize, type Summary } from './lib/stats.js';

const CATALOG_DIR = 'bench/fixtures/catalog';
// B2's long catalog: fifty migrations, for the template path against a replay.
const TEMPLATE_CATALOG_DIR = 'bench/fixtures/catalog-50';
// Databases of this bench process: two benches on one machine (other worktrees) must not drop
// or migrate each other's databases mid-segment.
const DB_PREFIX = `cp_bench_${process.pid}`;
const TOKEN = 'bench-admin-token-0123456789abcdef';

const START_RUN = `mutation($input: StartMigrationRunInput!) { startMigrationRun(input: $input) {
  __typename ... on StartMigrationRunSuccess { run { id } } ... on Error { message } } }`;
const RUN_EVENTS = `subscription($id: ID!) { migrationRunEvents(runId: $id) {
  type at progress { total succeeded failed } } }`;
// What a dashboard reading the run and target behind each event asks (issue 16 measured this).
const RUN_EVENTS_WITH_RECORDS = `subscription($id: ID!) { migrationRunEvents(runId: $id) {
  type at run { status } target { status } } }`;
const CREATE_TENANT = `mutation($input: CreateTenantInput!) { createTenant(input: $input) {
  __typename ... on CreateTenantSuccess { tenant { id } provisioning { id } } ... on Error { message } } }`;

interface Row {
  readonly case: string;
  readonly metric: string;
  readonly value: number;
  /** min-max over B1's rounds, beside the median in `value`. */
  readonly range?: string;
  readonly unit: string;
  readonly goal?: string;
  readonly met?: boolean;
}

const rows: Row[] = [];
const details: Record<string, unknown> = {};

async function main(): Promise<void> {
  const options = parseBenchOptions(process.argv.slice(2));
  const upSql = await readCatalogUps();
  const started = new Date();
  if (options.cases.includes('B1') || options.cases.includes('B5')) await benchFleetRollout(options, upSql);
  if (options.cases.includes('B2')) await benchProvisioning(options, upSql);
  if (options.cases.includes('B3')) await benchFleetQueries(options);
  if (options.cases.includes('B4')) await benchFanout(options);
  if (options.cases.includes('B6')) await benchBackups(options);
  if (options.cases.includes('B7')) await benchVerifyRun(options);
  printTable();
  await mkdir(options.outDir, { recursive: true });
  const file = join(options.outDir, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(
    file,
    JSON.stringify({ startedAt: started, machine: await machine(), options, rows, details }, null, 2),
  );
  console.log(`\nresults written to ${file}`);
}

/**
 * B1 (and B5): N empty tenant schemas to the latest version, end to end, against the floors and
 * the peer tool. Each round runs every segment once, each on fresh databases after the previous
 * segment's databases were dropped and flushed (settle), in an order rotated every round; ratios
 * are per round, reported as median and range.
 */
async function benchFleetRollout(options: BenchOptions, upSql: string[]): Promise<void> {
  const n = options.tenants;
  const segments = options.skipBaselines ? (['cp'] as const) : B1_SEGMENTS;
  const rounds: RoundRates[] = [];
  const runs: B1SegmentRun[] = [];
  // Every segment's databases are dropped once all rounds are done, not between segments: on a
  // filesystem such as this machine's (ext4 without a journal), creating files after thousands were
  // deleted in the last minutes scans past each of them (`recently_deleted` in ext4's inode
  // allocator), so a segment that followed a drop paid for its predecessor's files.
  const dropLater: string[] = [];
  try {
    for (let index = 0; index < options.rounds; index++) {
      const rates: Partial<Record<B1Segment, number>> = {};
      for (const [position, segment] of segmentOrder(segments, index).entries()) {
        const run = await runSegment(segment, options, upSql, dropLater);
        runs.push({ round: index + 1, position: position + 1, ...run });
        rates[segment] = run.tenantsPerSecond;
        console.error(
          `B1 round ${index + 1}/${options.rounds} ${segment}: ${round(run.tenantsPerSecond)} tenants/s (load ${run.loadAverage})`,
        );
      }
      rounds.push({ round: index + 1, rates });
    }
  } finally {
    await dropDatabases(...dropLater);
  }
  const summary = summarizeRounds(rounds);
  details.B1 = { n, rounds: options.rounds, runs, summary };
  const cpRuns = runs.filter((r) => r.segment === 'cp');
  const labels: Record<B1Segment, string> = {
    cp: `control plane, N=${n}`,
    raw1: '(a) raw floor, 1 connection',
    raw4: '(b) raw floor, 4 connections',
    npm: '(c) node-pg-migrate, pool of 4',
    engine: '(d) the engine alone: the worker’s move and fingerprint, 4 connections, no control plane',
  };
  for (const segment of segments) pushRange('B1', labels[segment], summary.rates[segment], 'tenants/s');
  for (const key of Object.keys(cpRuns[0]?.cpuMsPerTenant ?? {}))
    pushRange(
      'B1',
      `CPU of ${key} per tenant`,
      medianRange(cpRuns.map((r) => r.cpuMsPerTenant?.[key] ?? Number.NaN)),
      'ms',
    );
  // The same server-wide figure for each baseline: where the control plane's PostgreSQL work differs.
  for (const segment of segments.filter((s) => s !== 'cp'))
    pushRange(
      'B1',
      `CPU of ${SERVER_CPU} per tenant, ${labels[segment]}`,
      medianRange(
        runs.filter((r) => r.segment === segment).map((r) => r.cpuMsPerTenant?.[SERVER_CPU] ?? Number.NaN),
      ),
      'ms',
    );
  for (const role of Object.keys(cpRuns[0]?.peakRssMb ?? {})) {
    const mb = Math.max(...cpRuns.map((r) => r.peakRssMb?.[role] ?? 0));
    pushGoal('B5', `peak RSS ${role} (N=${n})`, mb, 'MB', '< 250', mb < 250);
  }
  if (options.skipBaselines) return;
  pushRange('B1', 'ratio to the best raw floor of the round', summary.toFloor, '×', {
    goal: '>= 0.85',
    met: summary.toFloor.median >= 0.85,
  });
  pushRange('B1', 'ratio to node-pg-migrate of the round', summary.toPeer, '×', {
    goal: '>= 1.5',
    met: summary.toPeer.median >= 1.5,
  });
  // The ceiling: no control plane on this engine can beat (d). Below 0.85 the floor goal cannot be
  // met by the control plane's work alone; the tenant database's part (ledger, guard, fingerprint) decides.
  pushRange(
    'B1',
    'ceiling: (d) the engine alone ÷ the best raw floor of the round',
    summary.engineToFloor,
    '×',
  );
  pushRange('B1', 'control plane ÷ (d) the engine alone, per round', summary.toEngine, '×');
}

/** Every process of the PostgreSQL server, both databases and its background work included. */
const SERVER_CPU = 'PostgreSQL (whole server)';

interface SegmentResult {
  readonly segment: B1Segment;
  readonly seconds: number;
  readonly tenantsPerSecond: number;
  /** 1-minute load average when the segment started: other work on the machine. */
  readonly loadAverage: number;
  /**
   * CPU ms per tenant: the whole PostgreSQL server (every segment); for the control plane also by
   * process (api, worker) and PostgreSQL per database.
   */
  readonly cpuMsPerTenant?: Record<string, number>;
  readonly peakRssMb?: Record<string, number>;
}
type B1SegmentRun = SegmentResult & { readonly round: number; readonly position: number };

async function runSegment(
  segment: B1Segment,
  options: BenchOptions,
  upSql: string[],
  dropLater: string[],
): Promise<SegmentResult> {
  const n = options.tenants;
  if (segment === 'cp') return runControlPlaneSegment(options, dropLater);
  const run = {
    raw1: (url: string, schemas: string[]) => runRawFloor(url, upSql, schemas, 1),
    raw4: (url: string, schemas: string[]) => runRawFloor(url, upSql, schemas, 4),
    npm: (url: string, schemas: string[]) => runNodePgMigrate(url, CATALOG_DIR, schemas, 4),
    engine: async (url: string, schemas: string[]) =>
      runEngineFloor(url, await loadCatalog(CATALOG_DIR), schemas, options.runConcurrency, {
        fingerprint: loadConfig().fingerprintAfterTarget,
      }),
  }[segment];
  // The engine's moves check the ownership marker, as the worker's do: its schemas carry one.
  const marker = segment === 'engine' ? ENGINE_SCHEMA_MARKER : undefined;
  const { seconds, loadAverage, serverCpuMsPerTenant } = await baseline(segment, n, run, dropLater, marker);
  return {
    segment,
    seconds,
    tenantsPerSecond: n / seconds,
    loadAverage,
    cpuMsPerTenant: { [SERVER_CPU]: serverCpuMsPerTenant },
  };
}

/** One control-plane segment: a fresh stack, N seeded tenants, one run through the API. */
async function runControlPlaneSegment(options: BenchOptions, dropLater: string[]): Promise<SegmentResult> {
  const n = options.tenants;
  const stack = await startStack(`b1_${dropLater.length}`, options, { worker: true, dropLater });
  try {
    await seedSchemaTenants(stack.config, 'b1', n);
    await settle();
    const loadAverage = currentLoadAverage();
    const cpuBefore = await Promise.all(stack.processes.map((p) => p.cpuSeconds()));
    const pgBefore = await postgresCpuByDatabase();
    const serverBefore = await postgresServerCpuSeconds();
    const seconds = await timeRun(stack.endpoint, { concurrency: options.runConcurrency }, n);
    const cpuAfter = await Promise.all(stack.processes.map((p) => p.cpuSeconds()));
    const pgAfter = await postgresCpuByDatabase();
    const cpuMsPerTenant: Record<string, number> = {
      [SERVER_CPU]: (((await postgresServerCpuSeconds()) - serverBefore) * 1000) / n,
    };
    for (const [database, label] of [
      [stack.controlPlaneDatabase, 'PostgreSQL (control-plane DB)'],
      [stack.tenantDatabase, 'PostgreSQL (tenant DB)'],
    ] as const)
      cpuMsPerTenant[label] = (((pgAfter.get(database) ?? 0) - (pgBefore.get(database) ?? 0)) * 1000) / n;
    stack.processes.forEach((p, i) => {
      const used = (cpuAfter[i] as number) - (cpuBefore[i] as number);
      cpuMsPerTenant[p.role] = (cpuMsPerTenant[p.role] ?? 0) + (used * 1000) / n;
    });
    const versions = await catalogVersions();
    await countLedgers(stack.config.tenantDatabaseUrl, n, versions.length, versions.at(-1) ?? '');
    const peakRssMb: Record<string, number> = {};
    for (const p of stack.processes)
      peakRssMb[p.role] = Math.max(peakRssMb[p.role] ?? 0, await p.peakRssMb());
    return { segment: 'cp', seconds, tenantsPerSecond: n / seconds, loadAverage, cpuMsPerTenant, peakRssMb };
  } catch (error) {
    // The API masks unexpected errors: the processes' own logs say what happened.
    for (const p of stack.processes)
      console.error(`--- ${p.role} log (last lines) ---\n${p.logTail().split('\n').slice(-15).join('\n')}`);
    throw error;
  } finally {
    await stack.stop();
  }
}

const CHECK_DRIFT = `mutation($input: CheckSchemaDriftInput!) { checkSchemaDrift(input: $input) {
  __typename ... on CheckSchemaDriftSuccess { run { id } } ... on Error { message } } }`;

/**
 * B7 (issue 13): a VERIFY run (checkSchemaDrift) over N tenants whose schemas were migrated to the
 * latest version of --verify-catalog, each schema read and compared with that version's expected
 * structure; against the bare cost of the same reads (`readSchemaFingerprint` of each schema on as
 * many plain connections as the worker has slots, no control plane), alternating every round over
 * the same schemas. Every target must SUCCEED and every bare read find the expected fingerprint.
 */
async function benchVerifyRun(options: BenchOptions): Promise<void> {
  const n = options.tenants;
  const catalogDir = join('bench/fixtures', options.verifyCatalog);
  const stack = await startStack('b7', options, { worker: true, env: { MIGRATIONS_DIR: catalogDir } });
  let readers: BareReaders | undefined;
  try {
    const catalog = await loadCatalog(catalogDir);
    let begin = performance.now();
    const { schemas } = await seedMigratedSchemaTenants(stack.config, 'b7', n, catalog);
    const seedSeconds = (performance.now() - begin) / 1000;
    // Paid once per release by the first VERIFY run: the catalog replayed for its expected fingerprints.
    begin = performance.now();
    const expected = await expectedFingerprintOf(stack.config, catalog);
    const replaySeconds = (performance.now() - begin) / 1000;
    console.error(
      `B7 seeded ${n} schemas at ${catalog.latest} of ${options.verifyCatalog} in ${round(seedSeconds)} s; expected fingerprints in ${round(replaySeconds)} s`,
    );
    await settle();
    // The first run after a start also pays the processes' warm-up (JIT, plan caches, the tenant
    // pool's connections, the expected fingerprints loaded from the control plane): shown apart,
    // so the rounds compare like with like.
    const firstLoad = currentLoadAverage();
    const first = await timeVerifyRun(stack, n);
    console.error(`B7 first VERIFY run: ${round(first.tenantsPerSecond)} tenants/s (load ${firstLoad})`);
    const connections = options.workerConcurrency * options.workers;
    readers = await openBareReaders({
      url: stack.config.tenantDatabaseUrl,
      connections,
      ledgerTable: stack.config.ledgerTable,
    });
    // The bare reads' first pass likewise (their backends' catalog caches are cold).
    const firstBare = await timeBareReads(readers, stack, schemas, expected.hash);
    console.error(`B7 first bare pass: ${round(firstBare.tenantsPerSecond)} tenants/s`);
    const runs: (B7SegmentRun & { position: number; seconds: number; loadAverage: number })[] = [];
    for (let index = 0; index < options.rounds; index++) {
      for (const [position, segment] of segmentOrder(B7_SEGMENTS, index).entries()) {
        const loadAverage = currentLoadAverage();
        const run =
          segment === 'verify'
            ? await timeVerifyRun(stack, n)
            : await timeBareReads(readers, stack, schemas, expected.hash);
        runs.push({ round: index + 1, position: position + 1, segment, loadAverage, ...run });
        console.error(
          `B7 round ${index + 1}/${options.rounds} ${segment}: ${round(run.tenantsPerSecond)} tenants/s (load ${loadAverage})`,
        );
      }
    }
    const summary = summarizeVerifyRounds(runs);
    details.B7 = {
      n,
      catalog: options.verifyCatalog,
      seedSeconds,
      replaySeconds,
      first: { ...first, loadAverage: firstLoad },
      firstBare,
      runs,
      summary,
    };
    rows.push({
      case: 'B7',
      metric: `first VERIFY run after start, N=${n}`,
      value: round(first.tenantsPerSecond),
      unit: 'tenants/s',
    });
    rows.push({
      case: 'B7',
      metric: 'first pass of the bare reads',
      value: round(firstBare.tenantsPerSecond),
      unit: 'tenants/s',
    });
    pushRange('B7', `VERIFY run, N=${n} (${options.verifyCatalog})`, summary.rates.verify, 'tenants/s');
    pushRange('B7', `bare fingerprint reads, ${connections} connections`, summary.rates.bare, 'tenants/s');
    pushRange('B7', 'ratio of the VERIFY run to the bare reads of the round', summary.toBare, '×');
    for (const segment of B7_SEGMENTS)
      for (const [label, range] of Object.entries(summary.cpuMsPerTenant[segment]))
        pushRange('B7', `CPU of ${label} per tenant (${segment})`, range, 'ms');
  } catch (error) {
    for (const p of stack.processes)
      console.error(`--- ${p.role} log (last lines) ---\n${p.logTail().split('\n').slice(-15).join('\n')}`);
    throw error;
  } finally {
    await readers?.close();
    await stack.stop();
  }
}

/** The latest version's expected fingerprint, computed (and stored for the workers) as a VERIFY run would. */
async function expectedFingerprintOf(config: Config, catalog: MigrationCatalog) {
  const controlPlane = new pg.Pool({ connectionString: config.databaseUrl, max: 1 });
  const tenants = new pg.Pool({ connectionString: config.tenantDatabaseUrl, max: 1 });
  try {
    const expected = createExpectedFingerprints(
      catalog,
      createExpectedFingerprintStore(controlPlane),
      config.ledgerTable,
    );
    const fingerprint = await expected.forVersion(tenants, catalog.latest);
    if (!fingerprint) throw new Error(`no expected fingerprint for ${catalog.latest}`);
    return fingerprint;
  } finally {
    await Promise.all([controlPlane.end(), tenants.end()]);
  }
}

/** One VERIFY run over every tenant through the API, until RUN_FINISHED; CPU per tenant by process. */
async function timeVerifyRun(stack: Stack, n: number) {
  const cpuBefore = await Promise.all(stack.processes.map((p) => p.cpuSeconds()));
  const backendsBefore = await postgresCpuByBackend();
  const begin = performance.now();
  const data = await gql<{ checkSchemaDrift: { run?: { id: string }; message?: string } }>(
    stack.endpoint,
    CHECK_DRIFT,
    { input: {} },
  );
  const runId = data.checkSchemaDrift.run?.id;
  if (!runId) throw new Error(`checkSchemaDrift failed: ${data.checkSchemaDrift.message}`);
  const last = await waitForRunFinished(stack.endpoint, runId);
  const seconds = (performance.now() - begin) / 1000;
  const cpuAfter = await Promise.all(stack.processes.map((p) => p.cpuSeconds()));
  const postgres = cpuDeltaByDatabase(backendsBefore, await postgresCpuByBackend());
  if (last.succeeded !== n || last.total !== n)
    throw new Error(
      `VERIFY run: ${last.succeeded}/${n} succeeded, ${last.failed} failed; first errors: ${await verifyErrors(stack)}`,
    );
  const cpuMsPerTenant: Record<string, number> = {};
  for (const [database, label] of [
    [stack.controlPlaneDatabase, 'PostgreSQL (control-plane DB)'],
    [stack.tenantDatabase, 'PostgreSQL (tenant DB)'],
  ] as const)
    cpuMsPerTenant[label] = ((postgres.get(database) ?? 0) * 1000) / n;
  stack.processes.forEach((p, i) => {
    const used = (cpuAfter[i] as number) - (cpuBefore[i] as number);
    cpuMsPerTenant[p.role] = (cpuMsPerTenant[p.role] ?? 0) + (used * 1000) / n;
  });
  return { seconds, tenantsPerSecond: n / seconds, cpuMsPerTenant };
}

/** The first errors of the last VERIFY run's failed targets (drift differences, or why a read failed). */
async function verifyErrors(stack: Stack): Promise<string> {
  const client = new pg.Client({ connectionString: stack.config.databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ error: string | null }>(
      `SELECT t.error FROM control_plane.migration_run_targets t
        WHERE t.run_id = (SELECT id FROM control_plane.migration_runs WHERE kind = 'verify'
                          ORDER BY created_at DESC LIMIT 1)
          AND t.status <> 'succeeded' ORDER BY t.position LIMIT 3`,
    );
    return rows.map((r) => r.error ?? '(no error recorded)').join(' | ');
  } finally {
    await client.end();
  }
}

/** The bare floor of the same reads: each schema's fingerprint on the readers' plain connections. */
async function timeBareReads(
  readers: BareReaders,
  stack: Stack,
  schemas: readonly string[],
  expectedHash: string,
) {
  const n = schemas.length;
  const result = await readers.read(schemas, expectedHash);
  if (result.matching !== n)
    throw new Error(`bare reads: ${result.matching}/${n} schemas have the expected fingerprint`);
  return {
    seconds: result.seconds,
    tenantsPerSecond: n / result.seconds,
    cpuMsPerTenant: {
      'PostgreSQL (tenant DB)': ((result.postgresCpuSeconds.get(stack.tenantDatabase) ?? 0) * 1000) / n,
      'bench process (Node)': (result.nodeCpuSeconds * 1000) / n,
    },
  };
}

/** B6: a tenant backup through the service against a bare pg_dump of the same schema (issue 15). */
async function benchBackups(options: BenchOptions): Promise<void> {
  const result = await benchBackupCost(CATALOG_DIR, options.backupTenants, options.backupRounds);
  details.B6 = result;
  pushLatency('B6', 'backup through the service', result.ours);
  pushLatency('B6', 'bare pg_dump -Fc', result.bare);
  rows.push({
    case: 'B6',
    metric: 'dump size per tenant',
    value: round(result.bytesPerTenant / 1024),
    unit: 'KiB',
  });
  rows.push({ case: 'B6', metric: 'ratio to bare pg_dump p50', value: round(result.ratio.p50), unit: '×' });
  rows.push({
    case: 'B6',
    metric: 'ratio spread p5-p95',
    value: round(result.ratio.p95 - result.ratioP5),
    unit: `× (${round(result.ratioP5)}-${round(result.ratio.p95)}, min ${round(result.ratio.min)}, max ${round(result.ratio.max)})`,
  });
}

/**
 * B2: createTenant until its provisioning run's RUN_FINISHED arrives, one after another, against
 * CREATE SCHEMA + the catalog in one session on the same server, interleaved per tenant (the
 * order alternates) so both meet the same machine. Each provisioning is also split into its parts
 * from the client's clock and the control plane's timestamps (same host clock). Then the template
 * path (issue 16): the 50-migration catalog provisioned through the service from its template,
 * through the service with PROVISION_TEMPLATE=off, and replayed raw, rotated per tenant.
 */
async function benchProvisioning(options: BenchOptions, upSql: string[]): Promise<void> {
  const n = options.provisions;
  const stack = await startStack('b2', options, { worker: true });
  const raw = await openRawProvisioner(`${DB_PREFIX}_b2_raw`, upSql);
  const ours: ProvisionSample[] = [];
  const rawMs: number[] = [];
  let firstMs = 0;
  try {
    // The first tenant of a catalog builds its template (PROVISION_TEMPLATE=auto): shown apart.
    firstMs = (await provisionThroughApi(stack, 'warmup')).totalMs;
    await raw.sample();
    for (let i = 0; i < n; i++) {
      const steps = [
        async () => void ours.push(await provisionThroughApi(stack, `prov_${String(i).padStart(4, '0')}`)),
        async () => void rawMs.push(await raw.sample()),
      ];
      for (const step of i % 2 === 0 ? steps : steps.reverse()) await step();
    }
    await addServerTimes(stack, ours);
  } finally {
    await raw.close();
    await stack.stop();
  }
  const oursMs = summarize(ours.map((sample) => sample.totalMs));
  const rawSummary = summarize(rawMs);
  const pairRatios = summarize(ours.map((sample, i) => sample.totalMs / (rawMs[i] as number)));
  const parts = provisionParts(ours);
  // The stack provisions as this process's environment says (the default: from a template).
  const template = loadConfig().provisionTemplate;
  details.B2 = {
    provisionTemplate: template,
    ours: oursMs,
    raw: rawSummary,
    pairRatios,
    parts,
    firstMs,
    samples: { ours, raw: rawMs },
  };
  rows.push({
    case: 'B2',
    metric: `first createTenant → ACTIVE (warm-up, not in the ratio${template === 'auto' ? '; it builds the template' : ''})`,
    value: round(firstMs),
    unit: 'ms',
  });
  pushLatency('B2', `createTenant → ACTIVE (PROVISION_TEMPLATE=${template})`, oursMs);
  pushLatency('B2', 'raw CREATE SCHEMA + catalog', rawSummary);
  pushGoal(
    'B2',
    'p50 ratio to raw',
    oursMs.p50 / rawSummary.p50,
    '×',
    '<= 1.5',
    oursMs.p50 / rawSummary.p50 <= 1.5,
  );
  rows.push({
    case: 'B2',
    metric: 'per-tenant ratio to raw (median)',
    value: round(pairRatios.p50),
    unit: `× (p5-p95 ${round(
      percentileOf(
        ours.map((s, i) => s.totalMs / (rawMs[i] as number)),
        5,
      ),
    )}-${round(pairRatios.p95)})`,
  });
  for (const [part, summary] of Object.entries(parts)) {
    rows.push({ case: 'B2', metric: `part: ${part} p50`, value: round(summary.p50), unit: 'ms' });
  }
  if (!options.skipTemplates) await benchProvisioningTemplates(options);
}

/** One createTenant → RUN_FINISHED, with the client's clock at each end. */
interface ProvisionSample {
  readonly name: string;
  readonly startedAt: number;
  readonly answeredAt: number;
  readonly finishedAt: number;
  readonly totalMs: number;
  /** The control plane's timestamps of the run and its target (ms since the epoch). */
  server?: { runCreated: number; targetStarted: number; targetFinished: number; runFinished: number };
}

async function provisionThroughApi(
  stack: Stack,
  name: string,
  isolation: 'SCHEMA' | 'DATABASE' = 'SCHEMA',
): Promise<ProvisionSample> {
  const startedAt = Date.now();
  const begin = performance.now();
  const data = await gql<{
    createTenant: { __typename: string; provisioning?: { id: string }; message?: string };
  }>(stack.endpoint, CREATE_TENANT, { input: { name, isolation } });
  const answeredAt = Date.now();
  const runId = data.createTenant.provisioning?.id;
  if (!runId)
    throw new Error(`createTenant failed: ${data.createTenant.message ?? data.createTenant.__typename}`);
  const provisioned = await waitForRunFinished(stack.endpoint, runId);
  if (provisioned.succeeded !== provisioned.total)
    throw new Error(`provisioning run ${runId} ended with ${provisioned.failed} failed`);
  const totalMs = performance.now() - begin;
  return { name, startedAt, answeredAt, finishedAt: Date.now(), totalMs };
}

/** Reads each provisioning's run and target timestamps from the control plane, by tenant name. */
async function addServerTimes(stack: Stack, samples: ProvisionSample[]): Promise<void> {
  const client = new pg.Client({ connectionString: stack.config.databaseUrl });
  await client.connect();
  try {
    const { rows: found } = await client.query<{
      name: string;
      run_created: number;
      target_started: number;
      target_finished: number;
      run_finished: number;
    }>(
      `SELECT t.name,
              extract(epoch FROM r.created_at) * 1000 AS run_created,
              extract(epoch FROM g.started_at) * 1000 AS target_started,
              extract(epoch FROM g.finished_at) * 1000 AS target_finished,
              extract(epoch FROM r.finished_at) * 1000 AS run_finished
         FROM control_plane.migration_run_targets g
         JOIN control_plane.migration_runs r ON r.id = g.run_id
         JOIN control_plane.tenants t ON t.tenant_id = g.tenant_id
        WHERE r.kind = 'provision'`,
    );
    const byName = new Map(found.map((row) => [row.name, row]));
    for (const sample of samples) {
      const row = byName.get(sample.name);
      if (!row) continue;
      sample.server = {
        runCreated: Number(row.run_created),
        targetStarted: Number(row.target_started),
        targetFinished: Number(row.target_finished),
        runFinished: Number(row.run_finished),
      };
    }
  } finally {
    await client.end();
  }
}

/**
 * Where a provisioning's time goes, from the two clocks: the mutation until its transaction began
 * (HTTP, auth, parsing), the rest of the mutation (registration, audit, enqueue, answer), the queue
 * hop and claim (run row to target started), the tenant work and the finish's start (target
 * started to finished), and the event's way to the client (target finished to RUN_FINISHED
 * received, which includes the client opening its subscription after the mutation answered).
 */
function provisionParts(samples: readonly ProvisionSample[]): Record<string, Summary> {
  const timed = samples.filter((sample) => sample.server);
  const part = (fn: (s: ProvisionSample & { server: NonNullable<ProvisionSample['server']> }) => number) =>
    summarize(
      timed.map((sample) =>
        fn(sample as ProvisionSample & { server: NonNullable<ProvisionSample['server']> }),
      ),
    );
  return {
    'request until the run row (api)': part((s) => s.server.runCreated - s.startedAt),
    'run row until answered (api)': part((s) => s.answeredAt - s.server.runCreated),
    'run row until target claimed (queue hop, claim)': part(
      (s) => s.server.targetStarted - s.server.runCreated,
    ),
    'claimed until finished (tenant work, finish)': part(
      (s) => s.server.targetFinished - s.server.targetStarted,
    ),
    'answered until subscribed RUN_FINISHED (client)': part((s) => s.finishedAt - s.answeredAt),
    'target finished until RUN_FINISHED received': part((s) => s.finishedAt - s.server.targetFinished),
  };
}

/**
 * B2 template path: the 50-migration catalog through three stacks at once: one taking a spare
 * schema made ahead from the catalog's template (the default), one applying the template itself
 * (PROVISION_SPARE_SCHEMAS=0), one replaying the catalog (PROVISION_TEMPLATE=off); and the raw
 * replay of the same files in one session. The four rotate per tenant. Ratios are per tenant
 * (each against the raw replay of its round) and reported as median with p5-p95.
 */
async function benchProvisioningTemplates(options: BenchOptions): Promise<void> {
  const n = options.provisions;
  const upSql = await readCatalogUps(TEMPLATE_CATALOG_DIR);
  const env = (extra: Record<string, string>) => ({ MIGRATIONS_DIR: TEMPLATE_CATALOG_DIR, ...extra });
  const stacks = {
    spare: await startStack('b2s', options, { worker: true, env: env({ PROVISION_SPARE_SCHEMAS: '2' }) }),
    template: await startStack('b2t', options, { worker: true, env: env({ PROVISION_SPARE_SCHEMAS: '0' }) }),
    replay: await startStack('b2r', options, { worker: true, env: env({ PROVISION_TEMPLATE: 'off' }) }),
  };
  const raw = await openRawProvisioner(`${DB_PREFIX}_b2t_raw`, upSql);
  const samples = {
    spare: [] as number[],
    template: [] as number[],
    replay: [] as number[],
    raw: [] as number[],
  };
  const firstMs: Record<string, number> = {};
  let databases: Record<string, number[]> = {};
  try {
    // The first tenant of a stack builds the template (and the expected fingerprints): timed apart.
    for (const [kind, stack] of Object.entries(stacks)) {
      firstMs[kind] = (await provisionThroughApi(stack, 'warmup')).totalMs;
    }
    await raw.sample();
    for (let i = 0; i < n; i++) {
      const name = `tpl_${String(i).padStart(4, '0')}`;
      const steps = [
        async () => void samples.spare.push((await provisionThroughApi(stacks.spare, name)).totalMs),
        async () => void samples.template.push((await provisionThroughApi(stacks.template, name)).totalMs),
        async () => void samples.replay.push((await provisionThroughApi(stacks.replay, name)).totalMs),
        async () => void samples.raw.push(await raw.sample()),
      ];
      for (let k = 0; k < steps.length; k++) await (steps[(i + k) % steps.length] as () => Promise<void>)();
    }
    databases = await benchDatabaseTemplates(options, stacks.template, stacks.replay, upSql);
  } finally {
    await raw.close();
    const templates = await Promise.all(Object.values(stacks).map(templateDatabasePrefixOf));
    await Promise.all(Object.values(stacks).map((stack) => stack.stop()));
    await dropTenantDatabases(['tenant_b2d', ...templates]);
  }
  const ratios = (of: number[]) => of.map((ms, i) => ms / (samples.raw[i] as number));
  const spread = (values: number[]) =>
    `p5-p95 ${round(percentileOf(values, 5))}-${round(percentileOf(values, 95))}`;
  details.B2template = {
    catalog: TEMPLATE_CATALOG_DIR,
    firstTenantMs: firstMs,
    summaries: Object.fromEntries(Object.entries(samples).map(([kind, ms]) => [kind, summarize(ms)])),
    ratios: Object.fromEntries(
      (['spare', 'template', 'replay'] as const).map((kind) => [kind, summarize(ratios(samples[kind]))]),
    ),
    samples,
    database: {
      summaries: Object.fromEntries(Object.entries(databases).map(([kind, ms]) => [kind, summarize(ms)])),
      samples: databases,
    },
  };
  const labels = {
    spare: 'createTenant → ACTIVE, spare schema',
    template: 'createTenant → ACTIVE, template applied',
    replay: 'createTenant → ACTIVE, replaying',
    raw: 'raw CREATE SCHEMA + catalog',
  } as const;
  for (const kind of ['spare', 'template', 'replay', 'raw'] as const) {
    pushLatency('B2', `50 files: ${labels[kind]}`, summarize(samples[kind]));
  }
  for (const kind of ['spare', 'template', 'replay'] as const) {
    const median = percentileOf(ratios(samples[kind]), 50);
    rows.push({
      case: 'B2',
      metric: `50 files: ${labels[kind]} / raw, per tenant (median)`,
      value: round(median),
      unit: `× (${spread(ratios(samples[kind]))})`,
      ...(kind === 'spare' ? { goal: '<= 0.3', met: median <= 0.3 } : {}),
    });
  }
  const databaseRatio = (kind: string) =>
    (databases[kind] ?? []).map((ms, i) => ms / (databases.raw?.[i] ?? Number.NaN));
  for (const kind of ['template', 'replay'] as const) {
    const values = databaseRatio(kind);
    if (values.length === 0) continue;
    const median = percentileOf(values, 50);
    rows.push({
      case: 'B2',
      metric: `50 files, DATABASE isolation: ${kind === 'template' ? 'copy of the template database' : 'replaying'} / raw, per tenant (median)`,
      value: round(median),
      unit: `× (${spread(values)}; p50 ${round(percentileOf(databases[kind] ?? [], 50))} ms vs raw ${round(percentileOf(databases.raw ?? [], 50))} ms)`,
      ...(kind === 'template' ? { goal: '<= 0.3', met: median <= 0.3 } : {}),
    });
  }
  // The same paths at the provisioner alone, where the goal of 0.3x is about the tenant's server.
  const cost = await benchProvisionerCost(TEMPLATE_CATALOG_DIR, upSql, {
    tenants: n,
    databases: Math.min(n, 10),
  });
  const atProvisioner: [string, number[], number[]][] = [
    ['spare schema', cost.schema.spare, cost.schema.raw],
    ['template applied', cost.schema.template, cost.schema.raw],
    ['replay', cost.schema.replay, cost.schema.raw],
    ['DATABASE, copy of the template database', cost.database.copy, cost.database.raw],
  ];
  for (const [label, ms, against] of atProvisioner) {
    const perTenant = ms.map((value, i) => value / (against[i] as number));
    const median = percentileOf(perTenant, 50);
    rows.push({
      case: 'B2',
      metric: `50 files at the provisioner: ${label} / raw, per tenant (median)`,
      value: round(median),
      unit: `× (${spread(perTenant)}; p50 ${round(percentileOf(ms, 50))} ms vs raw ${round(percentileOf(against, 50))} ms)`,
      ...(label === 'replay' ? {} : { goal: '<= 0.3', met: median <= 0.3 }),
    });
  }
  (details.B2template as Record<string, unknown>).atProvisioner = cost;
  rows.push({
    case: 'B2',
    metric: '50 files: first tenant (builds the template)',
    value: round(firstMs.template ?? Number.NaN),
    unit: 'ms',
  });
}

/**
 * B2 template path, DATABASE isolation: a tenant of its own database through the template stack
 * (a copy of the template database) and the replaying stack, against CREATE DATABASE + the catalog
 * in one transaction; the three rotate per tenant. Fewer tenants than the SCHEMA case: each is a
 * database, and dropping databases is slow.
 */
async function benchDatabaseTemplates(
  options: BenchOptions,
  template: Stack,
  replay: Stack,
  upSql: string[],
): Promise<Record<string, number[]>> {
  const n = Math.min(options.provisions, 10);
  const samples = { template: [] as number[], replay: [] as number[], raw: [] as number[] };
  await provisionThroughApi(template, 'b2d_warmup_t', 'DATABASE');
  for (let i = 0; i < n; i++) {
    const id = String(i).padStart(4, '0');
    const steps = [
      async () =>
        void samples.template.push((await provisionThroughApi(template, `b2d_t${id}`, 'DATABASE')).totalMs),
      async () =>
        void samples.replay.push((await provisionThroughApi(replay, `b2d_r${id}`, 'DATABASE')).totalMs),
      async () => {
        const database = `tenant_b2d_raw${id}`;
        const begin = performance.now();
        const admin = new pg.Client({ connectionString: databaseUrl('postgres') });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`).finally(() => admin.end());
        const client = new pg.Client({ connectionString: databaseUrl(database) });
        await client.connect();
        await client.query(`BEGIN; ${upSql.join('\n;\n')}; COMMIT;`).finally(() => client.end());
        samples.raw.push(performance.now() - begin);
      },
    ];
    for (let k = 0; k < steps.length; k++) await (steps[(i + k) % steps.length] as () => Promise<void>)();
  }
  return samples;
}

/** The names of a stack's template databases: `cp_template_<its deployment id's first 8>_`. */
async function templateDatabasePrefixOf(stack: Stack): Promise<string> {
  const client = new pg.Client({ connectionString: stack.config.databaseUrl });
  await client.connect();
  try {
    const { rows: found } = await client.query<{ id: string }>(
      'SELECT deployment_id::text AS id FROM control_plane.deployment',
    );
    return `cp_template_${(found[0]?.id ?? 'none').replace(/-/g, '').slice(0, 8)}_`;
  } finally {
    await client.end();
  }
}

/** Drops the databases whose names start with one of `prefixes` (template databases included). */
async function dropTenantDatabases(prefixes: readonly string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: databaseUrl('postgres') });
  await admin.connect();
  try {
    const { rows: found } = await admin.query<{ datname: string; datistemplate: boolean }>(
      `SELECT datname, datistemplate FROM pg_database WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) AS p(prefix) WHERE starts_with(datname, p.prefix))`,
      [prefixes],
    );
    for (const { datname, datistemplate } of found) {
      const name = pg.escapeIdentifier(datname);
      if (datistemplate) await admin.query(`ALTER DATABASE ${name} WITH IS_TEMPLATE false`);
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}

function percentileOf(values: readonly number[], p: number): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    p,
  );
}

/** CREATE SCHEMA + the catalog in one transaction on one connection, in a database of its own. */
async function openRawProvisioner(database: string, upSql: string[]) {
  await recreateDatabases(database);
  const client = new pg.Client({ connectionString: databaseUrl(database) });
  await client.connect();
  let next = 0;
  return {
    async sample(): Promise<number> {
      const schema = pg.escapeIdentifier(`tenant_raw_${next++}`);
      const begin = performance.now();
      await client.query(
        `BEGIN; CREATE SCHEMA ${schema}; SET LOCAL search_path TO ${schema}; ${upSql.join('\n;\n')}; COMMIT;`,
      );
      return performance.now() - begin;
    },
    async close(): Promise<void> {
      await client.end();
      await dropDatabases(database);
    },
  };
}

/** B3: the tenants page and run progress at fleet size, against bare SQL for the same rows. */
async function benchFleetQueries(options: BenchOptions): Promise<void> {
  const stack = await startStack('b3', options, { worker: false });
  const iterations = 1000;
  try {
    await seedSchemaTenants(stack.config, 'q', options.queryTenants, false);
    const tenantsQuery = `query($filter: TenantFilter) { tenants(first: 50, filter: $filter) { totalCount
      pageInfo { hasNextPage endCursor } edges { node { id tenantId name environment status schemaVersion createdAt
      databases { id isolation databaseName schemaName host port status schemaVersion } } } } }`;
    const filter = { status: ['ACTIVE'], environment: ['PRODUCTION'], nameContains: '_0' };
    const api = await sample(iterations, () => gql(stack.endpoint, tenantsQuery, { filter }));
    const cp = new pg.Client({ connectionString: stack.config.databaseUrl });
    await cp.connect();
    try {
      const bare = await sample(iterations, async () => {
        await cp.query(
          `SELECT t.*, d.id AS d_id, d.isolation, d.database_name, d.schema_name, d.host, d.port, d.status AS d_status, d.schema_version
             FROM (SELECT * FROM control_plane.tenants WHERE status = 'active' AND environment = 'production'
                     AND deleted_at IS NULL AND name ILIKE '%' || $1 || '%' ORDER BY name LIMIT 51) t
             JOIN control_plane.tenant_databases d ON d.tenant_id = t.tenant_id`,
          ['_0'],
        );
        await cp.query(
          `SELECT count(*) FROM control_plane.tenants WHERE status = 'active' AND environment = 'production'
             AND deleted_at IS NULL AND name ILIKE '%' || $1 || '%'`,
          ['_0'],
        );
      });
      // A run to ask about: dry-run over the whole fleet, never executed (no worker).
      const runId = await startRun(stack.endpoint, { dryRun: true, concurrency: 8 });
      const progressQuery = `query($id: ID!) { migrationRun(id: $id) { id status progress { total pending running succeeded failed skipped cancelled } } }`;
      const apiRun = await sample(iterations, () => gql(stack.endpoint, progressQuery, { id: runId }));
      const rawId = (
        await cp.query('SELECT id FROM control_plane.migration_runs ORDER BY created_at DESC LIMIT 1')
      ).rows[0].id;
      const bareRun = await sample(iterations, () =>
        cp.query(
          'SELECT id, status, total, pending, running, succeeded, failed, skipped, cancelled FROM control_plane.migration_runs WHERE id = $1',
          [rawId],
        ),
      );
      const http = await bareHttpRoundTrips(iterations);
      details.B3 = { tenants: options.queryTenants, api, bare, apiRun, bareRun, bareHttp: http };
      pushLatency('B3', `tenants page (${options.queryTenants} tenants)`, api);
      pushLatency('B3', 'bare SQL, same rows', bare);
      pushGoal('B3', 'tenants p99 ratio', api.p99 / bare.p99, '×', '<= 5', api.p99 / bare.p99 <= 5);
      pushLatency('B3', 'migrationRun progress', apiRun);
      pushLatency('B3', 'bare SQL, run counters', bareRun);
      // What any HTTP API pays before its own work: the floor under the progress query's goal.
      pushLatency('B3', 'bare Node HTTP round trip', http);
      pushGoal(
        'B3',
        'progress p99 ratio to bare HTTP + bare SQL',
        apiRun.p99 / (http.p99 + bareRun.p99),
        '×',
        '<= 5',
        apiRun.p99 / (http.p99 + bareRun.p99) <= 5,
      );
      pushGoal(
        'B3',
        'progress p99 ratio',
        apiRun.p99 / bareRun.p99,
        '×',
        '<= 5',
        apiRun.p99 / bareRun.p99 <= 5,
      );
    } finally {
      await cp.end();
    }
  } finally {
    await stack.stop();
  }
}

/** B4: many SSE subscribers on one run; every one must see every event and RUN_FINISHED; delivery lag. */
async function benchFanout(options: BenchOptions): Promise<void> {
  const stack = await startStack('b4', options, { worker: false });
  try {
    await seedSchemaTenants(stack.config, 'f', options.fanoutTargets);
    const migrations = (await readdir(CATALOG_DIR)).filter((file) => file.endsWith('.up.sql')).length;
    // RUN_STARTED and RUN_FINISHED, and per target TARGET_STARTED, each MIGRATION_APPLIED, TARGET_SUCCEEDED.
    const expectedEvents = 2 + options.fanoutTargets * (2 + migrations);
    const runId = await startRun(stack.endpoint, { concurrency: options.runConcurrency });
    const plain = Array.from({ length: options.subscribers }, () => fanoutStream());
    // One more stream reads the run and target of every event from the control-plane DB.
    const reading = fanoutStream();
    const streams = [...plain, reading];
    const done = streams.map((stream, i) =>
      subscribeSseRaw(
        stack.endpoint,
        i < plain.length ? RUN_EVENTS : RUN_EVENTS_WITH_RECORDS,
        { id: runId },
        stream.onPayload,
      ),
    );
    // The bus itself, heard beside the API by a process of its own (this one is busy parsing
    // every delivery, so its clock would stamp late): the worker's and Redis's share of the lag.
    // The run's global id is base64 of `MigrationRun:<uuid>`.
    const runUuid = Buffer.from(runId, 'base64').toString('utf8').split(':')[1];
    const busProbe = await startBusProbe(
      stack.config.redisUrl,
      `${stack.config.redisPrefix}:run-events:${runUuid}`,
    );
    const deadline = Date.now() + 60_000;
    while (streams.some((stream) => !stream.snapshot) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    // The worker starts only once every subscriber holds its stream, so none can miss an event.
    const api = stack.processes.find((p) => p.role === 'api');
    const apiCpuBefore = (await api?.cpuSeconds()) ?? Number.NaN;
    // This process parses every delivery: its own CPU, and how late its event loop ran (a late
    // loop stamps events late, so its delay is part of the lag measured here, not the API's).
    const clientCpuBefore = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const startedAt = Date.now();
    await stack.addWorker();
    await Promise.all(done);
    const runMs = Date.now() - startedAt;
    const busLags = await busProbe.stop();
    loopDelay.disable();
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const clientCpuMs = (clientCpu.user + clientCpu.system) / 1000;
    const apiCpuMs = (((await api?.cpuSeconds()) ?? Number.NaN) - apiCpuBefore) * 1000;
    const fanout = await fanoutCounters(stack.endpoint);

    const lags = plain.flatMap((stream) => stream.lags);
    const deliveries = lags.length;
    const lag = summarize(lags);
    lags.length = 0;
    const recordLag = summarize(reading.lags);
    const busLag = summarize(busLags);
    const finished = plain.filter((stream) => stream.finishedLag !== null).length;
    // Every stream must have received every event of the run, RUN_FINISHED last.
    const complete = streams.filter((s) => s.events === expectedEvents && s.finishedLag !== null).length;
    const clientLoopDelayP99 = loopDelay.percentile(99) / 1e6;
    details.B4 = {
      subscribers: options.subscribers,
      targets: options.fanoutTargets,
      expectedEvents,
      complete,
      finished,
      runMs,
      lag,
      lagByRunSecond: lagByRunSecond(plain),
      busLag,
      recordLag,
      recordsFinishedLag: reading.finishedLag,
      apiCpuMs,
      clientCpuMs,
      clientLoopDelayMs: {
        p50: loopDelay.percentile(50) / 1e6,
        p99: clientLoopDelayP99,
        max: loopDelay.max / 1e6,
      },
      fanout,
    };
    rows.push({
      case: 'B4',
      metric: `streams receiving all ${expectedEvents} events, RUN_FINISHED last`,
      value: complete,
      unit: `of ${streams.length}`,
      goal: 'all',
      met: complete === streams.length,
    });
    pushLatency('B4', `event lag (${deliveries} deliveries)`, lag);
    pushLatency('B4', `event lag at the Redis bus (worker and Redis only)`, busLag);
    rows.push({
      case: 'B4',
      metric: `api CPU per run event (${reading.events} events, ${streams.length} streams, ${round(runMs / 1000)} s)`,
      value: round(apiCpuMs / Math.max(1, reading.events)),
      unit: 'ms',
    });
    rows.push({
      case: 'B4',
      metric: 'bench client CPU per delivery; its event loop delay p99',
      value: round((clientCpuMs * 1000) / Math.max(1, deliveries + reading.events)),
      unit: `µs; ${round(clientLoopDelayP99)} ms`,
    });
    pushLatency('B4', `event lag reading run and target (1 stream, ${reading.events} events)`, recordLag);
    rows.push({
      case: 'B4',
      metric: 'RUN_FINISHED lag reading run and target',
      value: round(reading.finishedLag ?? Number.NaN),
      unit: 'ms',
      goal: '< 250',
      met: reading.finishedLag !== null && reading.finishedLag < 250,
    });
    const writes = fanout.sse_writes_total ?? 0;
    rows.push({
      case: 'B4',
      metric: `executions for ${fanout.sse_events_total ?? 0} SSE events`,
      value: fanout.graphql_subscription_event_executions_total ?? 0,
      unit: 'executions',
    });
    rows.push({
      case: 'B4',
      metric: 'SSE events per socket write',
      value: round(writes > 0 ? (fanout.sse_events_total ?? 0) / writes : 0),
      unit: 'events',
    });
    pushGoal('B4', 'lag p99', lag.p99, 'ms', '< 250', lag.p99 < 250);
    pushGoal('B4', 'lag p99 reading run and target', recordLag.p99, 'ms', '< 250', recordLag.p99 < 250);
  } finally {
    await stack.stop();
  }
}

/**
 * A child process subscribed to `channel` that stamps each event's arrival; stop() returns each
 * event's lag (arrival minus its `at`).
 */
async function startBusProbe(redisUrl: string, channel: string): Promise<{ stop(): Promise<number[]> }> {
  const script = `
    import { Redis } from 'ioredis';
    const lags = [];
    const redis = new Redis(process.env.PROBE_REDIS_URL);
    redis.on('message', (_channel, message) => {
      const receivedAt = Date.now();
      const parsed = JSON.parse(message);
      for (const event of Array.isArray(parsed) ? parsed : [parsed]) lags.push(receivedAt - Date.parse(event.at));
    });
    await redis.subscribe(process.env.PROBE_CHANNEL);
    process.stdout.write('ready\\n');
    process.stdin.resume();
    process.stdin.on('end', () => { process.stdout.write(JSON.stringify(lags) + '\\n'); redis.disconnect(); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, PROBE_REDIS_URL: redisUrl, PROBE_CHANNEL: channel },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => (output += text));
  while (!output.includes('ready\n')) {
    if (child.exitCode !== null) throw new Error('bus probe exited');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
      return JSON.parse(output.slice(output.indexOf('ready\n') + 6)) as number[];
    },
  };
}

/** One B4 stream's tally: every event counted, its lag kept (receive time minus the event's `at`). */
interface FanoutStream {
  snapshot: boolean;
  /** Live events received (the SNAPSHOT is not one). */
  events: number;
  readonly lags: number[];
  /** The event time (ms since the epoch) of each lag, for the per-second view. */
  readonly ats: number[];
  finishedLag: number | null;
  readonly onPayload: (json: string, receivedAt: number) => void;
}

function fanoutStream(): FanoutStream {
  const stream: FanoutStream = {
    snapshot: false,
    events: 0,
    lags: [],
    ats: [],
    finishedLag: null,
    // 2.7 million events arrive in this one process: read the two fields without JSON.parse.
    onPayload(json, receivedAt) {
      const type = jsonStringField(json, 'type');
      const at = jsonStringField(json, 'at');
      if (type === null || at === null) throw new Error(`Unexpected event: ${json}`);
      if (type === 'SNAPSHOT') {
        stream.snapshot = true;
        return;
      }
      if (stream.finishedLag !== null) throw new Error(`event after RUN_FINISHED: ${json}`);
      const atMs = Date.parse(at);
      stream.events++;
      stream.lags.push(receivedAt - atMs);
      stream.ats.push(atMs);
      if (type === 'RUN_FINISHED') stream.finishedLag = receivedAt - atMs;
    },
  };
  return stream;
}

/** p99 lag of the plain streams per second of the run (by event time): where the lag is. */
function lagByRunSecond(streams: readonly FanoutStream[]): number[] {
  const first = Math.min(...streams.map((s) => s.ats[0] ?? Infinity));
  const buckets: number[][] = [];
  for (const stream of streams)
    for (let i = 0; i < stream.ats.length; i++)
      (buckets[Math.floor((stream.ats[i]! - first) / 1000)] ??= []).push(stream.lags[i]!);
  return Array.from(buckets, (bucket) =>
    bucket
      ? percentile(
          bucket.sort((a, b) => a - b),
          99,
        )
      : 0,
  );
}

/** The API's subscription fan-out counters from /metrics (executions, shared results, SSE writes). */
async function fanoutCounters(endpoint: GraphqlEndpoint): Promise<Record<string, number>> {
  const text = await (
    await fetch(new URL('/metrics', endpoint.url), { headers: { authorization: `Bearer ${endpoint.token}` } })
  ).text();
  const counters: Record<string, number> = {};
  for (const match of text.matchAll(/^((?:graphql_subscription|sse)_[a-z_]+) (\d+)$/gm))
    counters[match[1]!] = Number(match[2]);
  return counters;
}

interface Stack {
  readonly config: Config;
  readonly controlPlaneDatabase: string;
  readonly tenantDatabase: string;
  readonly endpoint: GraphqlEndpoint;
  readonly processes: ServiceProcess[];
  addWorker(): Promise<void>;
  stop(): Promise<void>;
}

/** A fresh control-plane and tenant database, an API process and (optionally) worker processes. */
async function startStack(
  name: string,
  options: BenchOptions,
  {
    worker,
    env: extraEnv = {},
    dropLater,
  }: {
    worker: boolean;
    env?: Record<string, string>;
    /** Collects the stack's databases for the caller to drop later, instead of stop() dropping them. */
    dropLater?: string[];
  },
): Promise<Stack> {
  const cpDb = `${DB_PREFIX}_${name}`;
  const tenantDb = `${DB_PREFIX}_${name}_tenants`;
  await recreateDatabases(cpDb, tenantDb);
  const port = await freePort();
  const env = {
    DATABASE_URL: databaseUrl(cpDb),
    TENANT_DATABASE_URL: databaseUrl(tenantDb),
    REDIS_PREFIX: `bench-${name}-${process.pid}`,
    PORT: String(port),
    MIGRATIONS_DIR: CATALOG_DIR,
    WORKER_CONCURRENCY: String(options.workerConcurrency),
    BOOTSTRAP_ADMIN_TOKEN: TOKEN,
    LOG_LEVEL: 'info',
    NODE_ENV: 'development',
    ...extraEnv,
  };
  const config = loadConfig(env);
  await migrateControlPlane(config.databaseUrl, config.controlPlaneMigrationsDir);
  const processes: ServiceProcess[] = [];
  const base = `http://127.0.0.1:${port}`;
  processes.push(await startService('api', env, () => answers(`${base}/readyz`)));
  const addWorker = async () => {
    for (let i = 0; i < options.workers; i++) {
      processes.push(await startService('worker', env, async (log) => log.includes('"worker started"')));
    }
  };
  if (worker) await addWorker();
  return {
    config,
    controlPlaneDatabase: cpDb,
    tenantDatabase: tenantDb,
    endpoint: { url: `${base}/graphql`, token: TOKEN },
    processes,
    addWorker,
    async stop() {
      await Promise.all(processes.map((p) => p.stop()));
      if (dropLater) dropLater.push(cpDb, tenantDb);
      else await dropDatabases(cpDb, tenantDb);
      await deleteRedisKeys(config.redisUrl, env.REDIS_PREFIX);
    },
  };
}

/** Starts a migration run through the API; returns its global id. */
async function startRun(endpoint: GraphqlEndpoint, input: Record<string, unknown>): Promise<string> {
  const data = await gql<{ startMigrationRun: { run?: { id: string }; message?: string } }>(
    endpoint,
    START_RUN,
    {
      input,
    },
  );
  const runId = data.startMigrationRun.run?.id;
  if (!runId) throw new Error(`startMigrationRun failed: ${data.startMigrationRun.message}`);
  return runId;
}

/** Starts a run and waits for RUN_FINISHED; returns seconds from the mutation to the last event. */
async function timeRun(
  endpoint: GraphqlEndpoint,
  input: Record<string, unknown>,
  expected: number,
): Promise<number> {
  const begin = performance.now();
  const runId = await startRun(endpoint, input);
  const last = await waitForRunFinished(endpoint, runId);
  const seconds = (performance.now() - begin) / 1000;
  if (last.succeeded !== expected)
    throw new Error(`run finished with ${last.succeeded}/${expected} succeeded, ${last.failed} failed`);
  return seconds;
}

/**
 * The run's last progress once it ended. A run that ended before the subscription read its
 * snapshot gets a stream of just that SNAPSHOT (the subscription's documented behaviour).
 */
async function waitForRunFinished(endpoint: GraphqlEndpoint, runId: string) {
  let progress = { total: 0, succeeded: 0, failed: 0 };
  const types: string[] = [];
  await subscribeSse(endpoint, RUN_EVENTS, { id: runId }, (data) => {
    const event = data.migrationRunEvents as { type: string; progress: typeof progress };
    progress = event.progress;
    types.push(event.type);
  });
  const ended = types.at(-1) === 'RUN_FINISHED' || (types.length === 1 && types[0] === 'SNAPSHOT');
  if (!ended) throw new Error(`stream of run ${runId} ended without RUN_FINISHED`);
  return progress;
}

/** Runs `fn` over N fresh schemas (commented `marker`, when given) in a database of its own; returns seconds. */
async function baseline(
  name: string,
  n: number,
  fn: (url: string, schemas: string[]) => Promise<{ seconds: number }>,
  dropLater: string[],
  marker?: string,
) {
  const db = `${DB_PREFIX}_${name}_${dropLater.length}`;
  await recreateDatabases(db);
  const url = databaseUrl(db);
  const schemas = Array.from({ length: n }, (_, i) => `tenant_${name}_${String(i + 1).padStart(5, '0')}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await createSchemas(client, schemas, marker).finally(() => client.end());
  await settle();
  const loadAverage = currentLoadAverage();
  try {
    const before = await postgresServerCpuSeconds();
    const { seconds } = await fn(url, schemas);
    // The closed connections' CPU reaches the postmaster's once they are reaped.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const serverCpuMsPerTenant = (((await postgresServerCpuSeconds()) - before) * 1000) / n;
    return { seconds, loadAverage, serverCpuMsPerTenant };
  } finally {
    dropLater.push(db);
  }
}

function currentLoadAverage(): number {
  return round(loadavg()[0] as number);
}

/**
 * Checks that each of the N tenants' ledgers is exact: it holds exactly the catalog's versions
 * (`versions` rows, the highest `latest`). Read 500 schemas a statement: one statement over
 * 10,000 ledgers would lock them all in one transaction ("out of shared memory").
 */
async function countLedgers(tenantUrl: string, n: number, versions: number, latest: string): Promise<number> {
  const client = new pg.Client({ connectionString: tenantUrl });
  await client.connect();
  try {
    const { rows: schemas } = await client.query<{ name: string }>(
      `SELECT schemaname AS name FROM pg_tables WHERE tablename = 'control_plane_ledger' AND schemaname LIKE 'tenant_b1_%'`,
    );
    let count = 0;
    for (let i = 0; i < schemas.length; i += 500) {
      const { rows: found } = await client.query(
        `SELECT count(*)::int AS n FROM unnest($3::text[]) AS s(name)
         WHERE (xpath('/row/c/text()', query_to_xml(format(
           'SELECT count(*) = %s AND max(version) = %L AS c FROM %I.control_plane_ledger', $1::int, $2::text, s.name),
           false, true, '')))[1]::text = 'true'`,
        [versions, latest, schemas.slice(i, i + 500).map((s) => s.name)],
      );
      count += found[0].n as number;
    }
    if (count !== n) throw new Error(`expected ${n} exact tenant ledgers, found ${count}`);
    return count;
  } finally {
    await client.end();
  }
}

/**
 * Round trips to a bare `node:http` server in this process answering a small JSON body, with the
 * same client (`fetch`, keep-alive) the GraphQL samples use.
 */
async function bareHttpRoundTrips(iterations: number): Promise<Summary> {
  const body = JSON.stringify({ data: { migrationRun: { id: 'x', status: 'RUNNING' } } });
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await sample(iterations, async () => {
      const response = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}' });
      await response.text();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function sample(iterations: number, fn: () => Promise<unknown>): Promise<Summary> {
  for (let i = 0; i < Math.min(100, iterations); i++) await fn(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const begin = performance.now();
    await fn();
    samples.push(performance.now() - begin);
  }
  return summarize(samples);
}

function pushGoal(
  benchCase: string,
  metric: string,
  value: number,
  unit: string,
  goal: string,
  met: boolean,
): void {
  rows.push({ case: benchCase, metric, value: round(value), unit, goal, met });
}

function pushRange(
  benchCase: string,
  metric: string,
  range: MedianRange,
  unit: string,
  goal?: { goal: string; met: boolean },
): void {
  rows.push({
    case: benchCase,
    metric,
    value: round(range.median),
    range: `${round(range.min)}-${round(range.max)}`,
    unit,
    ...goal,
  });
}

function pushLatency(benchCase: string, metric: string, summary: Summary): void {
  rows.push({ case: benchCase, metric: `${metric} p50`, value: round(summary.p50), unit: 'ms' });
  rows.push({ case: benchCase, metric: `${metric} p99`, value: round(summary.p99), unit: 'ms' });
}

/** The catalog's versions in order, from its up files' names. */
async function catalogVersions(dir = CATALOG_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.up.sql')).sort();
  return files.map((f) => f.slice(0, f.indexOf('_')));
}

async function readCatalogUps(dir = CATALOG_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.up.sql')).sort();
  return Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
}

function printTable(): void {
  const header = ['case', 'metric', 'value (median)', 'min-max', 'unit', 'goal', 'met'];
  const body = rows.map((r) => [
    r.case,
    r.metric,
    String(r.value),
    r.range ?? '',
    r.unit,
    r.goal ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of body) console.log(line(row));
}

async function machine() {
  const client = new pg.Client({ connectionString: databaseUrl('postgres') });
  await client.connect();
  const { rows: version } = await client.query('SELECT version()').finally(() => client.end());
  const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { dependencies: Record<string, string> };
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    // Other work on the machine at the end of the bench (1, 5 and 15 minutes); each B1 segment
    // records its own at its start.
    loadAverage: loadavg().map(round),
    platform: `${platform()} ${release()}`,
    node: process.version,
    postgres: version[0]?.version,
    packages: pkg.dependencies,
  };
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
