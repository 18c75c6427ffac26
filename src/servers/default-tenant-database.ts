/**
 * TENANT_DATABASE_URL's database on the default server, created when missing. A start must not
 * depend on a tenant server (issue 12: one that is down fails only its own targets), so when the
 * server does not answer the process starts anyway and creates the database once it does.
 */
import type { Logger } from '../logger.js';
import { ensureDatabase } from '../migrations/index.js';
import { startPeriodic, type PeriodicJob } from '../periodic.js';

// How often a start that found the default server down tries again: a provisioning on that
// server waits at most this long after it is back (its own job retries the connection meanwhile).
export const DEFAULT_DATABASE_RETRY_MS = 5000;

/**
 * Creates the database of `tenantDatabaseUrl` when missing. Tries once now; if the server does
 * not answer, logs why and retries in the background every `retryMs` until it succeeds or the
 * returned job is stopped. Never throws.
 */
export async function ensureDefaultTenantDatabase(
  tenantDatabaseUrl: string,
  logger: Logger,
  retryMs = DEFAULT_DATABASE_RETRY_MS,
): Promise<PeriodicJob> {
  let done = await attempt(true);
  if (done) return { stop: async () => undefined };
  // startPeriodic runs a pass at once; the attempt above was that one.
  let waited = false;
  const job = startPeriodic(async () => {
    if (!waited) {
      waited = true;
      return;
    }
    if (done) return;
    done = await attempt(false);
    if (done) void job.stop();
  }, retryMs);
  return job;

  async function attempt(first: boolean): Promise<boolean> {
    try {
      const created = await ensureDatabase(tenantDatabaseUrl);
      if (created || !first) logger.info('tenant database on the default server is ready', { created });
      return true;
    } catch (error) {
      // The message names the host and port, never the connection string (the logger redacts URLs too).
      const { code, message } = error as { code?: string; message?: string };
      if (first)
        logger.warn('default tenant server unreachable at start; retrying in the background', {
          code,
          error: message,
          retryMs,
        });
      else logger.debug('default tenant server still unreachable', { code, error: message });
      return false;
    }
  }
}
