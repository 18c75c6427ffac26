import type { Config } from '../config.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import type { Logger } from '../logger.js';
import { startPeriodic, type PeriodicJob } from '../periodic.js';

// The most of a mutation's input one audit row keeps. A caller can send megabytes (up to the HTTP
// body limit); storing them whole let any token holder grow the control-plane database at will.
export const AUDIT_INPUT_MAX_BYTES = 8192;
// Rows deleted per statement: short transactions that never hold many row locks at once.
export const AUDIT_PRUNE_BATCH_SIZE = 1000;
const DAY_MS = 86_400_000;

/**
 * Deletes audit rows older than `olderThan`, `batchSize` rows per statement, until none is left;
 * returns how many it deleted. Safe to run from several processes at once.
 */
export async function pruneAuditLog(
  db: ControlPlaneDb,
  { olderThan, batchSize = AUDIT_PRUNE_BATCH_SIZE }: { olderThan: Date; batchSize?: number },
): Promise<number> {
  let total = 0;
  for (;;) {
    // Oldest first, through idx_audit_log_at; SKIP LOCKED lets two pruners share the work.
    const deleted = await db.$executeRaw`
      DELETE FROM control_plane.audit_log
       WHERE id IN (SELECT id FROM control_plane.audit_log
                     WHERE at < ${olderThan}
                     ORDER BY at
                     LIMIT ${batchSize}
                     FOR UPDATE SKIP LOCKED)`;
    total += deleted;
    if (deleted < batchSize) return total;
  }
}

export type AuditPruner = PeriodicJob;

/**
 * Prunes the audit log now and then every AUDIT_PRUNE_INTERVAL_MS, keeping AUDIT_RETENTION_DAYS
 * days; does nothing when the retention is 0 (keep forever). A failed pass is logged and retried
 * at the next interval.
 */
export function startAuditPruner({
  db,
  config,
  logger,
  now = Date.now,
}: {
  db: ControlPlaneDb;
  config: Pick<Config, 'auditRetentionDays' | 'auditPruneIntervalMs'>;
  logger: Logger;
  now?: () => number;
}): AuditPruner {
  if (config.auditRetentionDays === 0) return { stop: async () => undefined };
  const pass = async () => {
    try {
      const deleted = await pruneAuditLog(db, {
        olderThan: new Date(now() - config.auditRetentionDays * DAY_MS),
      });
      if (deleted > 0) logger.info('pruned audit log', { deleted, retentionDays: config.auditRetentionDays });
    } catch (error) {
      logger.warn('could not prune the audit log', { error });
    }
  };
  return startPeriodic(pass, config.auditPruneIntervalMs);
}
