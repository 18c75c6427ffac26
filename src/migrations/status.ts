/**
 * Read-only views of a target: its status against the catalog, its history and the plan `up`
 * would follow. These read the ledger without taking the advisory lock.
 */
import type { Pool } from 'pg';
import { readLedger } from './ledger.js';
import { highestVersion, planUp } from './planner.js';
import type { LedgerEntry, MigrationCatalog, MigrationTarget, Plan, TargetStatusReport } from './types.js';

/** A ledger row plus whether the file on disk still has the recorded checksum. */
export type HistoryEntry = LedgerEntry & { readonly checksumMatches: boolean };

/** The target's current version, applied files (with checksum checks), pending files and drift. */
export async function getStatus(
  pool: Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
): Promise<TargetStatusReport> {
  const ledger = await readLedger(pool, target);
  const plan = planUp(catalog, ledger);
  return {
    currentVersion: highestVersion(ledger),
    applied: withChecksumMatches(catalog, ledger),
    pending: plan.steps,
    drift: plan.drift,
  };
}

/** The target's ledger, oldest first, each row flagged with whether its checksum still matches. */
export async function getHistory(
  pool: Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
): Promise<HistoryEntry[]> {
  return withChecksumMatches(catalog, await readLedger(pool, target));
}

/** The plan `migrateUp` would follow right now (drift included, nothing run). */
export async function previewUp(
  pool: Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
  toVersion?: string | null,
): Promise<Plan> {
  return planUp(catalog, await readLedger(pool, target), toVersion);
}

function withChecksumMatches(catalog: MigrationCatalog, ledger: readonly LedgerEntry[]): HistoryEntry[] {
  return ledger.map((entry) => ({ ...entry, checksumMatches: catalog.find(entry.version)?.checksum === entry.checksum }));
}
