/**
 * `drift [--environment <env>]` prints the fleet grouped by structure (expected clusters first,
 * then the outliers); `adopt --pattern <like> [--server <id or name>] [--source <source>]
 * [--name-prefix <p>] [--version-map <json>] [--dry-run] [--with-worker]` registers existing schemas through an ADOPT
 * run and waits for it.
 */
import os from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { composeServices } from '../composition.js';
import type { Config } from '../config.js';
import { HistorySource } from '../fingerprints/adoption.js';
import type { TenantEnvironment } from '../generated/prisma/enums.js';
import { createLogger } from '../logger.js';
import { assertControlPlaneReady } from './tenant-target.js';
import { RunNotSucceededError } from './tenants-up.js';
import { UsageError } from './usage-error.js';

/** The parsed command line these commands read. */
export interface DriftInput {
  readonly environment?: string | undefined;
  readonly pattern?: string | undefined;
  /** The database server the schemas are on (id or name); default the `default` server. */
  readonly server?: string | undefined;
  readonly source?: string | undefined;
  readonly 'name-prefix'?: string | undefined;
  readonly 'version-map'?: string | undefined;
  readonly 'dry-run'?: boolean | undefined;
  readonly 'with-worker'?: boolean | undefined;
}

// The database is the record: the command polls the run until it ends.
const POLL_INTERVAL_MS = 500;
const SAMPLE = 5;

/** Prints one line per drift cluster: version, expected or OUTLIER, size, hash prefix and sample tenants. */
export async function driftCommand(
  config: Config,
  input: DriftInput,
  io: { out: (line: string) => void },
): Promise<void> {
  const environment = input.environment?.toUpperCase();
  if (environment && !['DEVELOPMENT', 'STAGING', 'PRODUCTION'].includes(environment)) {
    throw new UsageError(
      `--environment must be development, staging or production, not "${input.environment}"`,
    );
  }
  await assertControlPlaneReady(config);
  const app = await composeServices(config, { logger: createLogger('warn'), name: 'cli', dbConnections: 2 });
  try {
    const clusters = await app.services.fingerprints.schemaDrift(
      environment ? { environment: [environment] } : null,
    );
    if (clusters.length === 0) io.out('no fingerprint recorded yet (run `checkSchemaDrift` or migrate once)');
    const names = new Map(
      (
        await app.db.tenant.findMany({
          where: { tenantId: { in: clusters.flatMap((c) => c.sampleTenantIds.slice(0, SAMPLE)) } },
          select: { tenantId: true, name: true },
        })
      ).map((t) => [t.tenantId, t.name]),
    );
    for (const cluster of clusters) {
      const sample = cluster.sampleTenantIds.slice(0, SAMPLE).map((id) => names.get(id) ?? id);
      const more =
        cluster.tenantCount > sample.length ? `, … ${cluster.tenantCount - sample.length} more` : '';
      io.out(
        `${(cluster.version ?? '-').padEnd(6)} ${(cluster.expected ? 'expected' : 'OUTLIER').padEnd(8)} ` +
          `${String(cluster.tenantCount).padStart(6)}  ${cluster.hash.slice(0, 12)}  ${sample.join(', ')}${more}`,
      );
    }
  } finally {
    await app.close();
  }
}

/** Starts an ADOPT run over the schemas matching --pattern and prints each schema's outcome. */
export async function adoptCommand(
  config: Config,
  input: DriftInput,
  io: { out: (line: string) => void },
): Promise<void> {
  if (!input.pattern)
    throw new UsageError('adopt needs --pattern <SQL LIKE pattern>, e.g. --pattern "legacy_%"');
  const source = (input.source ?? 'AUTO').toUpperCase();
  if (!Object.hasOwn(HistorySource, source)) {
    throw new UsageError(`--source must be one of ${Object.values(HistorySource).join(', ')}`);
  }
  let versionMap: unknown = null;
  if (input['version-map']) {
    try {
      versionMap = JSON.parse(input['version-map']);
    } catch (error) {
      throw new UsageError(`--version-map is not JSON: ${(error as Error).message}`);
    }
  }
  await assertControlPlaneReady(config);
  const app = await composeServices(config, { logger: createLogger('warn'), name: 'cli', dbConnections: 4 });
  try {
    if (input['with-worker']) await app.startWorker();
    const run = await app.services.adoption.adoptTenants(
      {
        schemaPattern: input.pattern,
        server: input.server ?? null,
        namePrefix: input['name-prefix'] ?? null,
        historySource: source as HistorySource,
        versionMap,
        dryRun: input['dry-run'] ?? false,
        environment: 'DEVELOPMENT' satisfies TenantEnvironment,
      },
      { name: `cli:${os.userInfo().username}` },
    );
    io.out(`run ${run.id}: adopting ${run.total} schema(s)${run.dryRun ? ' (dry run)' : ''}`);
    let ended = run;
    while (ended.finishedAt === null) {
      await delay(POLL_INTERVAL_MS);
      ended = await app.db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
    }
    const targets = await app.db.migrationRunTarget.findMany({
      where: { runId: run.id },
      include: { tenantDatabase: { select: { schemaName: true } } },
      orderBy: { position: 'asc' },
    });
    for (const target of targets) {
      const schema = target.tenantDatabase?.schemaName ?? target.schemaName;
      io.out(
        target.status === 'SUCCEEDED'
          ? `  ${target.plannedSql ?? `${schema} at ${target.toVersion}`}`
          : `  FAILED ${schema}: ${target.error}`,
      );
    }
    if (ended.status !== 'SUCCEEDED') throw new RunNotSucceededError(run.id, ended.status);
  } finally {
    await app.close();
  }
}
