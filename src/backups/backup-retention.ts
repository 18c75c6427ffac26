/**
 * The periodic job that removes expired backup files (BACKUP_RETENTION_DAYS beyond the
 * BACKUP_KEEP_LAST newest of each tenant; see BackupService.pruneBackups). Workers run it: they
 * are where backups are written, and the storage must be reachable from them.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { BackupService } from './backup-service.js';

export interface BackupPruner {
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
}

/**
 * Prunes now and then every BACKUP_PRUNE_INTERVAL_MS; nothing when BACKUP_RETENTION_DAYS is 0.
 * A failed pass is logged and retried at the next interval.
 */
export function startBackupPruner({
  backups,
  config,
  logger,
}: {
  backups: Pick<BackupService, 'pruneBackups'>;
  config: Pick<Config, 'backupRetentionDays' | 'backupPruneIntervalMs'>;
  logger: Logger;
}): BackupPruner {
  if (config.backupRetentionDays === 0) return { stop: async () => undefined };
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const pass = async () => {
    try {
      await backups.pruneBackups();
    } catch (error) {
      logger.warn('could not remove expired backups', { error });
    }
  };
  const tick = () => {
    if (stopped) return;
    running = running.then(pass);
  };
  const timer = setInterval(tick, config.backupPruneIntervalMs);
  timer.unref();
  tick();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
