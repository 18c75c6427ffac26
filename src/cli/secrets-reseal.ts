/**
 * `npm run migrate -- secrets reseal`: re-encrypts every stored tenant connection string under
 * ENCRYPTION_KEY (opening older ones with ENCRYPTION_KEYS_PREVIOUS), so previous keys can be
 * dropped. Progress on stderr, the summary on stdout; exits 1 when a row could not be opened or
 * when interrupted (Ctrl-C stops after the batch in flight; running it again continues).
 */
import type { Config } from '../config.js';
import { createSecretBoxFromConfig } from '../crypto/secret-box.js';
import { resealConnectionStrings, type ResealProgress } from '../crypto/reseal-connection-strings.js';
import { createControlPlanePool } from '../db/control-plane.js';
import { AppError } from '../errors.js';
import { assertControlPlaneReady } from './tenant-target.js';
import { UsageError } from './usage-error.js';

/** Where the command writes its summary. */
export interface SecretsIo {
  readonly out: (line: string) => void;
}

/** Where progress goes: stderr, redrawn in place on a terminal. */
export interface ResealProgressSink {
  write(text: string): void;
  readonly isTTY?: boolean;
}

// Failing rows named in the error line; the rest are counted.
const FAILURES_SHOWN = 10;

/** Some connection strings were not resealed: the CLI exits 1 and names them by row id. */
export class ResealIncompleteError extends AppError<'RESEAL_INCOMPLETE'> {
  constructor(message: string) {
    super('RESEAL_INCOMPLETE', message);
  }
}

/** Runs `secrets reseal`. */
export async function secretsCommand(
  config: Config,
  input: { readonly action: string | undefined },
  io: SecretsIo,
  sink: ResealProgressSink = process.stderr,
  signal?: AbortSignal,
): Promise<void> {
  if (input.action !== 'reseal')
    throw new UsageError(`unknown action "secrets ${input.action ?? ''}"; try "secrets reseal"`);
  await assertControlPlaneReady(config);
  const interrupt = signal ? null : onInterrupt();
  const secretBox = createSecretBoxFromConfig(config);
  const pool = createControlPlanePool(config.databaseUrl, {
    maxConnections: 1,
    applicationName: 'tenant-control-plane-cli-reseal',
  });
  try {
    const summary = await resealConnectionStrings(pool, secretBox, {
      signal: signal ?? interrupt?.signal,
      onProgress: (progress) =>
        sink.write(`${sink.isTTY ? '\r' : ''}${formatProgress(progress)}${sink.isTTY ? '' : '\n'}`),
    });
    if (sink.isTTY && summary.checked > 0) sink.write('\n');
    io.out(
      `secrets reseal: ${summary.resealed} resealed under key ${secretBox.currentKeyId}, ` +
        `${summary.alreadyCurrent} already current, ${summary.changedMeanwhile} changed meanwhile, ` +
        `${summary.failed.length} failed (${summary.checked} of ${summary.total} checked)`,
    );
    // The database servers' admin connection strings are sealed the same way (a few rows).
    const servers = summary.interrupted
      ? null
      : await resealConnectionStrings(pool, secretBox, { table: 'database_servers' });
    // Said only when there are any, so a control plane without servers prints what it did before.
    if (servers && servers.total > 0) {
      io.out(
        `secrets reseal: database servers: ${servers.resealed} resealed, ${servers.alreadyCurrent} already current, ` +
          `${servers.failed.length} failed (${servers.checked} of ${servers.total} checked)`,
      );
    }
    if (servers && servers.failed.length > 0 && summary.failed.length === 0) {
      const shown = servers.failed.map((failure) => `${failure.tenantDatabaseId} (${failure.message})`);
      throw new ResealIncompleteError(
        `${servers.failed.length} connection string(s) could not be opened, database servers: ${shown.join('; ')}`,
      );
    }
    if (summary.failed.length > 0) {
      const shown = summary.failed
        .slice(0, FAILURES_SHOWN)
        .map((failure) => `${failure.tenantDatabaseId} (${failure.message})`)
        .join('; ');
      const more =
        summary.failed.length > FAILURES_SHOWN ? ` and ${summary.failed.length - FAILURES_SHOWN} more` : '';
      throw new ResealIncompleteError(
        `${summary.failed.length} connection string(s) could not be opened, tenant databases: ${shown}${more}`,
      );
    }
    if (summary.interrupted) {
      throw new ResealIncompleteError(
        `interrupted after ${summary.checked} of ${summary.total} rows; run it again to continue`,
      );
    }
  } finally {
    interrupt?.release();
    await pool.end();
  }
}

function formatProgress(progress: ResealProgress): string {
  return `resealing connection strings: ${progress.checked}/${progress.total} checked, ${progress.resealed} resealed, ${progress.failed.length} failed`;
}

// Ctrl-C or SIGTERM lets the batch in flight commit, then stops; a second one kills as usual.
function onInterrupt(): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  return {
    signal: controller.signal,
    release() {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
    },
  };
}
