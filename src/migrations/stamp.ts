/**
 * Stamping: rewriting a target's ledger to say exactly which versions are applied, without
 * running any migration SQL (adopting an existing schema, or resolving drift by hand).
 */
import type { Pool } from 'pg';
import { parseVersion } from './catalog.js';
import { UnknownVersionError } from './errors.js';
import {
  deleteLedgerEntry,
  ensureLedger,
  insertLedgerEntry,
  readLedger,
  updateLedgerChecksum,
} from './ledger.js';
import { highestVersion } from './planner.js';
import { DEFAULT_LOCK_TIMEOUT_MS, withTargetTransaction } from './target-session.js';
import type { MigrationCatalog, MigrationTarget } from './types.js';

/** What a stamp changed in the ledger. */
export interface StampResult {
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  /** Versions recorded as applied by this stamp. */
  readonly inserted: readonly string[];
  /** Versions removed from the ledger by this stamp. */
  readonly removed: readonly string[];
  /** Versions whose recorded checksum was replaced by the file's current one. */
  readonly accepted: readonly string[];
}

/**
 * Makes the ledger say exactly the catalog versions <= `version` are applied ("0": none), with
 * the files' current checksums and execution_ms 0; runs no migration SQL.
 */
export async function stampVersion(
  pool: Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
  version: string,
  options: { readonly lockTimeoutMs?: number } = {},
): Promise<StampResult> {
  const limit = parseVersion(version);
  if (limit === null || (limit !== 0n && !catalog.find(version))) throw new UnknownVersionError(version);
  return withTargetTransaction(pool, target, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, async (client) => {
    await ensureLedger(client, target);
    const ledger = await readLedger(client, target);
    const wanted = catalog.files.filter((file) => file.order <= limit);
    const wantedVersions = new Map(wanted.map((file) => [file.order, file]));
    const inserted: string[] = [];
    const removed: string[] = [];
    const accepted: string[] = [];
    const present = new Set<bigint>();
    for (const entry of ledger) {
      const order = parseVersion(entry.version);
      const file = order === null ? undefined : wantedVersions.get(order);
      if (!file || order === null) {
        await deleteLedgerEntry(client, target, entry.version);
        removed.push(entry.version);
        continue;
      }
      present.add(order);
      if (entry.checksum !== file.checksum) {
        await updateLedgerChecksum(client, target, entry.version, file.checksum);
        accepted.push(entry.version);
      }
    }
    for (const file of wanted) {
      if (present.has(file.order)) continue;
      await insertLedgerEntry(client, target, file, 0);
      inserted.push(file.version);
    }
    return {
      fromVersion: highestVersion(ledger),
      toVersion: wanted.at(-1)?.version ?? null,
      inserted,
      removed,
      accepted,
    };
  });
}
