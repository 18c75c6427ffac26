/** Command-line options of `npm run bench`. */
export interface BenchOptions {
  /** Tenants in B1 (fleet rollout). */
  readonly tenants: number;
  /** Tenants seeded for B3 (fleet queries). */
  readonly queryTenants: number;
  /** createTenant calls in B2. */
  readonly provisions: number;
  /** SSE subscribers and run size in B4. */
  readonly subscribers: number;
  readonly fanoutTargets: number;
  readonly cases: readonly string[];
  /** Targets of a run queued or running at once. */
  readonly runConcurrency: number;
  readonly workerConcurrency: number;
  readonly workers: number;
  readonly outDir: string;
  /** Tenants (with rows) and rounds of B6 (backup cost). */
  readonly backupTenants: number;
  readonly backupRounds: number;
  /** B1 rounds: each runs every segment once, on fresh databases, in a rotated order. */
  readonly rounds: number;
  /** Skip B1's raw-floor and node-pg-migrate baselines (for a memory-only run at size). */
  readonly skipBaselines: boolean;
  /** Skip B2's template path (the 50-file catalog): the five-file provisioning only. */
  readonly skipTemplates: boolean;
  /** B7's tenant catalog under bench/fixtures: five migrations, or fifty for a bigger schema. */
  readonly verifyCatalog: VerifyCatalog;
}

/** The catalogs B7 can migrate its tenants to (directories of bench/fixtures). */
export const VERIFY_CATALOGS = ['catalog', 'catalog-50'] as const;
export type VerifyCatalog = (typeof VERIFY_CATALOGS)[number];

const USAGE = `usage: npm run bench -- [--cases B1,B2,B3,B4,B5,B6,B7] [--tenants 1000] [--query-tenants 10000]
  [--provisions 100] [--subscribers 500] [--fanout-targets 1000] [--run-concurrency 4]
  [--worker-concurrency 4] [--workers 1] [--rounds 3] [--backup-tenants 10] [--backup-rounds 10] [--quick] [--skip-baselines] [--skip-templates] [--out bench/results]
  [--verify-catalog catalog|catalog-50]
  --quick: tiny sizes for a smoke run (tenants 20, query-tenants 200, provisions 5, subscribers 10, fanout-targets 20, rounds 1)
  --skip-templates: B2 without its template path (the 50-file catalog)
  B7 (a VERIFY run over --tenants tenants, issue 13) runs only when named in --cases; its tenants are
  migrated to the latest version of bench/fixtures/<--verify-catalog> (default catalog, five files)
  and it alternates with the bare fingerprint reads of the same schemas for --rounds rounds
  --rounds: B1 repeats its segments (control plane, raw floors, node-pg-migrate) this many times in alternation`;

/** Parses argv; throws with the usage text on anything unknown. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const values = new Map<string, string>();
  let quick = false;
  let skipBaselines = false;
  let skipTemplates = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--quick') quick = true;
    else if (arg === '--skip-baselines') skipBaselines = true;
    else if (arg === '--skip-templates') skipTemplates = true;
    else if (arg === '--help' || arg === '-h') throw new Error(USAGE);
    else if (arg.startsWith('--') && argv[i + 1] !== undefined) values.set(arg.slice(2), argv[++i] as string);
    else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  const known = [
    'cases',
    'tenants',
    'query-tenants',
    'provisions',
    'subscribers',
    'fanout-targets',
    'run-concurrency',
    'worker-concurrency',
    'workers',
    'rounds',
    'out',
    'backup-tenants',
    'backup-rounds',
    'verify-catalog',
  ];
  for (const key of values.keys())
    if (!known.includes(key)) throw new Error(`unknown option --${key}\n${USAGE}`);
  const int = (key: string, normal: number, small: number) => {
    const raw = values.get(key);
    if (raw === undefined) return quick ? small : normal;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${key} must be a positive integer`);
    return value;
  };
  const cases = (values.get('cases') ?? 'B1,B2,B3,B4,B5,B6').split(',').map((c) => c.trim().toUpperCase());
  for (const c of cases) if (!/^B[1-7]$/.test(c)) throw new Error(`unknown case ${c}\n${USAGE}`);
  const verifyCatalog = values.get('verify-catalog') ?? 'catalog';
  if (!isVerifyCatalog(verifyCatalog))
    throw new Error(`--verify-catalog must be one of ${VERIFY_CATALOGS.join(', ')}\n${USAGE}`);
  return {
    tenants: int('tenants', 1000, 20),
    queryTenants: int('query-tenants', 10_000, 200),
    provisions: int('provisions', 100, 5),
    subscribers: int('subscribers', 500, 10),
    fanoutTargets: int('fanout-targets', 1000, 20),
    runConcurrency: int('run-concurrency', 4, 4),
    workerConcurrency: int('worker-concurrency', 4, 4),
    workers: int('workers', 1, 1),
    backupTenants: int('backup-tenants', 10, 3),
    backupRounds: int('backup-rounds', 10, 3),
    rounds: int('rounds', 3, 1),
    cases,
    outDir: values.get('out') ?? 'bench/results',
    skipBaselines,
    skipTemplates,
    verifyCatalog,
  };
}

function isVerifyCatalog(value: string): value is VerifyCatalog {
  return (VERIFY_CATALOGS as readonly string[]).includes(value);
}
