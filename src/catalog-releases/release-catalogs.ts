/**
 * The catalogs a process executes: the release each run pins, read from the control plane once
 * per process and kept in memory by release id (a release never changes), so a target costs no
 * extra round trip. The process's own disk catalog is published at boot and is one of them.
 */
import type { ControlPlanePool } from '../db/control-plane.js';
import { PreconditionFailedError, ValidationError } from '../errors.js';
import type { MigrationCatalog } from '../migrations/index.js';
import { catalogOfRelease, snapshotCatalog } from './release-snapshot.js';
import { findRelease, listReleaseIds, publishRelease, readRelease } from './release-store.js';
import { rollbackGap } from './rollback-release.js';

/** A release and its catalog. */
export interface ReleaseCatalog {
  readonly releaseId: string;
  readonly checksum: string;
  readonly catalog: MigrationCatalog;
}

/** The catalogs runs plan and execute with. */
export interface ReleaseCatalogs {
  /** The release of this process's own disk catalog, published at boot. */
  readonly local: ReleaseCatalog;
  /** The catalog of release `releaseId`; the local one for null (runs created before releases). */
  forRelease(releaseId: string | null): Promise<MigrationCatalog>;
  /** The release with `checksum` (default: the local one); ValidationError when none is stored. */
  resolve(checksum?: string | null): Promise<ReleaseCatalog>;
  /**
   * The release a rollback of tenants at `versions` to `limit` pins: the local one when it holds
   * every down file needed, else the newest stored release that does. PreconditionFailedError,
   * naming a missing down file, when none does.
   */
  forRollback(versions: readonly (string | null)[], limit: bigint): Promise<ReleaseCatalog>;
}

/** Publishes `catalog` (idempotent) and returns the process's release catalogs around it. */
export async function createReleaseCatalogs(
  pool: ControlPlanePool,
  catalog: MigrationCatalog,
): Promise<ReleaseCatalogs> {
  const snapshot = snapshotCatalog(catalog);
  const stored = await publishRelease(pool, snapshot);
  const local: ReleaseCatalog = { releaseId: stored.id, checksum: stored.checksum, catalog };
  const cache = new Map<string, Promise<ReleaseCatalog>>([[stored.id, Promise.resolve(local)]]);

  function loadRelease(releaseId: string): Promise<ReleaseCatalog> {
    let found = cache.get(releaseId);
    if (!found) {
      found = readRelease(pool, releaseId).then((release) => {
        if (!release) throw new Error(`catalog release ${releaseId} is not stored in the control plane`);
        return {
          releaseId,
          checksum: release.checksum,
          catalog: catalogOfRelease(release.checksum, release.files),
        };
      });
      // A failed read (the control plane was briefly unreachable) is not cached: the retry reads again.
      found.catch(() => cache.delete(releaseId));
      cache.set(releaseId, found);
    }
    return found;
  }

  async function forRelease(releaseId: string | null): Promise<MigrationCatalog> {
    return releaseId === null ? catalog : (await loadRelease(releaseId)).catalog;
  }

  async function resolve(checksum?: string | null): Promise<ReleaseCatalog> {
    if (checksum === undefined || checksum === null || checksum === local.checksum) return local;
    if (!/^[0-9a-f]{64}$/.test(checksum)) {
      throw new ValidationError(
        'catalogChecksum must be 64 lowercase hex digits (a release checksum)',
        'catalogChecksum',
      );
    }
    const release = await findRelease(pool, checksum);
    if (!release)
      throw new ValidationError(`No catalog release with checksum ${checksum}`, 'catalogChecksum');
    return loadRelease(release.id);
  }

  async function forRollback(versions: readonly (string | null)[], limit: bigint): Promise<ReleaseCatalog> {
    const gaps = [rollbackGap(catalog, versions, limit)];
    if (!gaps[0]) return local;
    // Newest first: a release a later deploy published is likelier to hold what the tenants ran.
    for (const releaseId of await listReleaseIds(pool)) {
      if (releaseId === local.releaseId) continue;
      const candidate = await loadRelease(releaseId);
      const gap = rollbackGap(candidate.catalog, versions, limit);
      if (!gap) return candidate;
      gaps.push(gap);
    }
    if (gaps.every((gap) => gap?.kind === 'unknown-target')) {
      throw new ValidationError(`Unknown migration version "${limit}"`, 'targetVersion');
    }
    const missing = gaps.find((gap) => gap?.kind === 'missing-down');
    throw new PreconditionFailedError(
      `Cannot roll back to ${limit}: no stored catalog release holds every down file needed (` +
        (missing ? missing.message : `this API's release: ${gaps[0].message}`) +
        '); nothing was changed',
    );
  }

  return { local, forRelease, resolve, forRollback };
}
