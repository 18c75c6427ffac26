/**
 * `tenants up`: a fleet-wide migration run through the same run service, queue and workers as
 * the API, with a live progress bar. A worker must be running (`npm start` or
 * `npm run start:worker`); `--with-worker` runs one inside the CLI for the run's duration.
 */
import os from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { composeServices } from '../composition.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { UsageError } from './usage-error.js';
import type { TenantEnvironment } from '../generated/prisma/enums.js';
import { createLogger } from '../logger.js';
import type { RunProgress } from '../pubsub/run-events.js';
import { assertControlPlaneReady } from './tenant-target.js';

/** The parsed command line `tenants up` reads (a subset of the CLI's CommandInput). */
export interface TenantsUpInput {
  readonly action: string | undefined;
  readonly environment?: string | undefined;
  readonly concurrency?: string | undefined;
  readonly to?: string | undefined;
  readonly 'dry-run'?: boolean | undefined;
  readonly 'with-worker'?: boolean | undefined;
}

/** Where the command prints its result lines. */
export interface TenantsUpIo {
  readonly out: (line: string) => void;
}

/** Where the progress bar goes: stderr, redrawn in place when it is a terminal. */
export interface ProgressSink {
  write(text: string): void;
  readonly isTTY?: boolean;
}

/** The run ended other than SUCCEEDED: the CLI exits 1. */
export class RunNotSucceededError extends AppError<'RUN_NOT_SUCCEEDED'> {
  constructor(runId: string, status: string) {
    super('RUN_NOT_SUCCEEDED', `run ${runId} ended ${status}`);
  }
}

const ENVIRONMENTS = ['development', 'staging', 'production'];
// A non-terminal stream gets one plain line at most this often, so CI logs stay readable.
const PLAIN_LINE_INTERVAL_MS = 2000;
// The database is the record: poll it too, in case an event is lost between Redis and here.
const POLL_INTERVAL_MS = 1000;

/** Runs `tenants up`; resolves when the run SUCCEEDED, throws RunNotSucceededError otherwise. */
export async function tenantsUpCommand(
  config: Config,
  input: TenantsUpInput,
  io: TenantsUpIo,
  sink: ProgressSink = process.stderr,
): Promise<void> {
  if (input.action !== 'up')
    throw new UsageError(`unknown action "tenants ${input.action ?? ''}"; try "tenants up"`);
  const environment = parseEnvironment(input.environment);
  const concurrency = parseConcurrency(input.concurrency);
  await assertControlPlaneReady(config);

  const logger = createLogger(config.logLevel === 'debug' ? 'debug' : 'warn');
  const app = await composeServices(config, { logger, name: 'cli', dbConnections: 4 });
  const { db, events } = app;
  try {
    const worker = input['with-worker'] ? await app.startWorker() : null;
    const service = app.services.runs;
    const request = {
      targetVersion: input.to ?? null,
      tenants: environment ? { environment: [environment] } : null,
      concurrency,
      dryRun: input['dry-run'] ?? false,
    };
    const actor = { name: `cli:${os.userInfo().username}` };
    // The CLI starts runs as the API does, so it leaves the same audit trail.
    const audit = app.services.audit;
    const run = await service.startMigrationRun(request, actor).catch(async (error: unknown) => {
      await audit.record({
        actor: actor.name,
        actorKind: 'cli',
        action: 'startMigrationRun',
        targetType: 'MigrationRun',
        input: request,
        outcome: error instanceof AppError ? error.code : 'ERROR',
        error: error instanceof Error ? error.message : String(error),
      });
      throw error;
    });
    await audit.record({
      actor: actor.name,
      actorKind: 'cli',
      action: 'startMigrationRun',
      targetType: 'MigrationRun',
      targetId: run.id,
      input: request,
      outcome: 'success',
    });
    io.out(`run ${run.id}: ${run.total} target(s) to ${run.targetVersion}${run.dryRun ? ' (dry run)' : ''}`);
    if (!worker) io.out('waiting for workers (start one with `npm start` or `npm run start:worker`)');

    const bar = createProgressDrawer(sink);
    bar.draw(run);
    const iterator = events.subscribeRun(run.id);
    let ended = false;
    const relay = (async () => {
      for await (const event of iterator) {
        bar.draw(event.progress);
        if (event.type === 'RUN_FINISHED') break;
      }
    })();
    let finalRun = run;
    while (!ended) {
      await delay(POLL_INTERVAL_MS);
      finalRun = await db.migrationRun.findUniqueOrThrow({ where: { id: run.id } });
      bar.draw(finalRun);
      ended = finalRun.finishedAt !== null;
    }
    await iterator.return?.();
    await relay;
    bar.end(finalRun);

    io.out(`run ${run.id} ${finalRun.status}: ${formatCounts(finalRun)}`);
    const failed = await db.migrationRunTarget.findMany({
      where: { runId: run.id, status: 'FAILED' },
      include: { tenant: { select: { name: true } } },
      orderBy: { position: 'asc' },
    });
    for (const target of failed)
      io.out(`  FAILED ${target.tenant?.name ?? target.schemaName}: ${target.error ?? 'unknown error'}`);
    if (finalRun.status !== 'SUCCEEDED') throw new RunNotSucceededError(run.id, finalRun.status);
  } finally {
    await app.close();
  }
}

/** `[#####.....] 120/200 ok 118 failed 2`: ended targets of all, with successes and failures. */
export function renderProgressBar(progress: RunProgress, width = 20): string {
  const done = progress.succeeded + progress.failed + progress.skipped + progress.cancelled;
  const filled = progress.total === 0 ? width : Math.min(width, Math.floor((done / progress.total) * width));
  const extra = [
    progress.skipped ? ` skipped ${progress.skipped}` : '',
    progress.cancelled ? ` cancelled ${progress.cancelled}` : '',
  ].join('');
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${progress.total} ok ${progress.succeeded} failed ${progress.failed}${extra}`;
}

/** Draws the bar on `sink`: redrawn with \r on a terminal, plain periodic lines otherwise. */
export function createProgressDrawer(sink: ProgressSink, now: () => number = Date.now) {
  let last = '';
  let lastPlainAt = 0;
  function draw(progress: RunProgress): void {
    const line = renderProgressBar(progress);
    if (line === last) return;
    if (sink.isTTY) {
      sink.write(`\r${line}`);
      last = line;
    } else if (now() - lastPlainAt >= PLAIN_LINE_INTERVAL_MS) {
      sink.write(`${line}\n`);
      last = line;
      lastPlainAt = now();
    }
  }
  function end(progress: RunProgress): void {
    const line = renderProgressBar(progress);
    if (sink.isTTY) sink.write(`\r${line}\n`);
    else if (line !== last) sink.write(`${line}\n`);
  }
  return { draw, end };
}

function formatCounts(p: RunProgress): string {
  return `${p.succeeded} succeeded, ${p.failed} failed, ${p.skipped} skipped, ${p.cancelled} cancelled of ${p.total}`;
}

function parseEnvironment(value: string | undefined): TenantEnvironment | null {
  if (value === undefined) return null;
  if (!ENVIRONMENTS.includes(value.toLowerCase())) {
    throw new UsageError(`--environment must be one of ${ENVIRONMENTS.join(', ')}`);
  }
  return value.toUpperCase() as TenantEnvironment;
}

function parseConcurrency(value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError('--concurrency must be a positive integer');
  return n;
}
