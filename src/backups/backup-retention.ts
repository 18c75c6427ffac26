/**
 * The periodic job that removes expired backup files (BACKUP_RETENTION_DAYS beyond the
 * BACKUP_KEEP_LAST newest of each tenant; see BackupService.pruneBackups). Workers run it: they
 * are where backups are written, and the storage must be reachable from them.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startPeriodic, type PeriodicJob } from '../periodic.js';
import type { BackupService } from './backup-service.js';

export type BackupPruner = PeriodicJob;

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
  const pass = async () => {
    try {
      await backups.pruneBackups();
    } catch (error) {
      logger.warn('could not remove expired backups', { error });
    }
  };
  return startPeriodic(pass, config.backupPruneIntervalMs);
}
