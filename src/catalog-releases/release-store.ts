/**
 * Catalog releases in the control plane: publish (idempotent, deduplicated by checksum), find
 * by checksum, read a release's files. Plain pg on the control-plane pool.
 */
import type { ControlPlanePool } from '../db/control-plane.js';
import type { FileKind } from '../migrations/index.js';
import type { ReleaseFile, ReleaseSnapshot } from './release-snapshot.js';

/** A stored release's identity. */
export interface StoredRelease {
  readonly id: string;
  readonly checksum: string;
  readonly latestVersion: string | null;
  /** False when a release with this checksum was already stored. */
  readonly created: boolean;
}

/** Stores `snapshot` unless a release with its checksum exists; one transaction either way. */
export async function publishRelease(
  pool: ControlPlanePool,
  snapshot: ReleaseSnapshot,
): Promise<StoredRelease> {
  const existing = await findRelease(pool, snapshot.checksum);
  if (existing) return { ...existing, created: false };
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const inserted = await client.query<{ id: string }>(
      `INSERT INTO control_plane.catalog_releases (checksum, latest_version, file_count, total_bytes)
       VALUES ($1, $2, $3, $4) ON CONFLICT (checksum) DO NOTHING RETURNING id::text AS id`,
      [snapshot.checksum, snapshot.latestVersion, snapshot.files.length, snapshot.totalBytes],
    );
    const id = inserted.rows[0]?.id;
    if (id) {
      const files = snapshot.files;
      await client.query(
        `INSERT INTO control_plane.catalog_release_files
           (release_id, version, kind, file_name, name, no_transaction, content, checksum)
         SELECT $1::uuid, version, kind, file_name, name, no_transaction, decode(content, 'base64'), checksum
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::text[])
             AS f(version, kind, file_name, name, no_transaction, content, checksum)`,
        [
          id,
          files.map((file) => file.version),
          files.map((file) => file.kind),
          files.map((file) => file.fileName),
          files.map((file) => file.name),
          files.map((file) => file.noTransaction),
          files.map((file) => file.content.toString('base64')),
          files.map((file) => file.checksum),
        ],
      );
    }
    await client.query('COMMIT');
    if (id) return { id, checksum: snapshot.checksum, latestVersion: snapshot.latestVersion, created: true };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
  // Another process published the same release between our read and our insert.
  const raced = await findRelease(pool, snapshot.checksum);
  if (!raced) throw new Error(`release ${snapshot.checksum} vanished while it was published`);
  return { ...raced, created: false };
}

/** The release with `checksum`, or null. */
export async function findRelease(
  pool: ControlPlanePool,
  checksum: string,
): Promise<Omit<StoredRelease, 'created'> | null> {
  const result = await pool.query<{ id: string; checksum: string; latest_version: string | null }>(
    `SELECT id::text AS id, checksum, latest_version FROM control_plane.catalog_releases WHERE checksum = $1`,
    [checksum],
  );
  const row = result.rows[0];
  return row ? { id: row.id, checksum: row.checksum, latestVersion: row.latest_version } : null;
}

/** The checksum and files of release `id`; null when there is no such release. */
export async function readRelease(
  pool: ControlPlanePool,
  id: string,
): Promise<{ checksum: string; files: ReleaseFile[] } | null> {
  const result = await pool.query<{
    release_checksum: string;
    version: string | null;
    kind: FileKind | null;
    file_name: string | null;
    name: string | null;
    no_transaction: boolean | null;
    content: Buffer | null;
    checksum: string | null;
  }>(
    `SELECT r.checksum AS release_checksum, f.version, f.kind, f.file_name, f.name, f.no_transaction, f.content, f.checksum
       FROM control_plane.catalog_releases r
       LEFT JOIN control_plane.catalog_release_files f ON f.release_id = r.id
      WHERE r.id = $1::uuid`,
    [id],
  );
  const first = result.rows[0];
  if (!first) return null;
  const files = result.rows
    .filter((row) => row.file_name !== null)
    .map((row) => ({
      version: row.version!,
      kind: row.kind!,
      fileName: row.file_name!,
      name: row.name!,
      noTransaction: row.no_transaction!,
      content: row.content!,
      checksum: row.checksum!.trim(),
    }));
  return { checksum: first.release_checksum.trim(), files };
}

/** Every stored release's id, newest first (by when it was first published). */
export async function listReleaseIds(pool: ControlPlanePool): Promise<string[]> {
  const result = await pool.query<{ id: string }>(
    `SELECT id::text AS id FROM control_plane.catalog_releases ORDER BY created_at DESC, id DESC`,
  );
  return result.rows.map((row) => row.id);
}
