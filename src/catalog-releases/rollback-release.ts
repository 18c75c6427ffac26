/**
 * Which catalog release a rollback pins: one that holds a down file for every version between
 * the selected tenants' versions and the target. Pure: the candidates come loaded.
 */
import { fileNameOf, parseVersion } from '../migrations/index.js';
import type { MigrationCatalog } from '../migrations/index.js';

/** Why a release cannot make a rollback. */
export interface RollbackGap {
  readonly kind: 'unknown-target' | 'unknown-version' | 'missing-down';
  /** The down file the release lacks (kind `missing-down`). */
  readonly missingDown: string | null;
  readonly message: string;
}

/**
 * Why `catalog` cannot take tenants at `versions` (their cached versions; null: none applied)
 * back to `limit`, or null when it can: it lacks the target or a tenant's version, or a step
 * between them has no down file.
 */
export function rollbackGap(
  catalog: MigrationCatalog,
  versions: readonly (string | null)[],
  limit: bigint,
): RollbackGap | null {
  if (limit !== 0n && !catalog.files.some((file) => file.order === limit)) {
    return { kind: 'unknown-target', missingDown: null, message: `it has no version ${limit}` };
  }
  // Highest first, so the message names the version the rollback meets first.
  const currents = versions
    .map((version) => (version === null ? null : parseVersion(version)))
    .filter((order): order is bigint => order !== null && order > limit)
    .sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  for (const current of currents) {
    if (!catalog.files.some((file) => file.order === current)) {
      return {
        kind: 'unknown-version',
        missingDown: null,
        message: `it has no version ${current} (tenants are at it)`,
      };
    }
    const blocking = [...catalog.files]
      .reverse()
      .find((file) => file.order > limit && file.order <= current && !file.reversible);
    if (blocking) {
      const missingDown = fileNameOf(blocking, 'down');
      return {
        kind: 'missing-down',
        missingDown,
        message: `${missingDown} is missing (tenants at version ${current})`,
      };
    }
  }
  return null;
}
