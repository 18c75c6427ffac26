/**
 * A catalog release as data: every file of a catalog (up, down, verify) with its content and
 * SHA-256, and the release checksum over them. Pure: snapshotting a catalog and rebuilding a
 * catalog from a snapshot touch neither the disk nor a database.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../errors.js';
import { buildCatalog, checksumOf, fileNameOf } from '../migrations/index.js';
import type { FileKind, MigrationCatalog } from '../migrations/index.js';

/** Largest file a release takes: a bigger one is a data dump, not a migration. */
export const MAX_RELEASE_FILE_BYTES = 10 * 1024 * 1024;
/** Largest release: every worker keeps the releases it runs in memory. */
export const MAX_RELEASE_BYTES = 50 * 1024 * 1024;

/** One file of a release. */
export interface ReleaseFile {
  readonly version: string;
  readonly name: string;
  readonly kind: FileKind;
  readonly fileName: string;
  readonly noTransaction: boolean;
  readonly content: Buffer;
  readonly checksum: string;
}

/** A whole release, ready to store. */
export interface ReleaseSnapshot {
  readonly checksum: string;
  readonly latestVersion: string | null;
  readonly files: readonly ReleaseFile[];
  readonly totalBytes: number;
}

/** A release is bigger than a release may be; nothing was stored. */
export class ReleaseTooLargeError extends ValidationError {
  constructor(message: string) {
    super(message, 'catalog');
  }
}

/** Snapshots a loaded catalog; throws ReleaseTooLargeError past the size limits. */
export function snapshotCatalog(catalog: MigrationCatalog): ReleaseSnapshot {
  const files: ReleaseFile[] = [];
  for (const file of catalog.files) {
    const entries: [FileKind, string | null, boolean][] = [
      ['up', file.upSql, !file.transactional],
      ['down', file.downSql, !file.downTransactional],
      ['verify', file.verifySql, false],
    ];
    for (const [kind, sql, noTransaction] of entries) {
      if (sql === null) continue;
      const fileName = fileNameOf(file, kind);
      const content = Buffer.from(sql, 'utf8');
      if (content.length > MAX_RELEASE_FILE_BYTES) {
        throw new ReleaseTooLargeError(
          `${fileName} has ${content.length} bytes; a catalog file may have at most ${MAX_RELEASE_FILE_BYTES}`,
        );
      }
      const name = /^\d+_(.+)\.(?:up|down|verify)\.sql$/.exec(fileName)?.[1] ?? file.name;
      files.push({
        version: file.version,
        name,
        kind,
        fileName,
        noTransaction,
        content,
        checksum: checksumOf(content),
      });
    }
  }
  const totalBytes = files.reduce((sum, file) => sum + file.content.length, 0);
  if (totalBytes > MAX_RELEASE_BYTES) {
    throw new ReleaseTooLargeError(
      `the catalog has ${totalBytes} bytes; a release may have at most ${MAX_RELEASE_BYTES}`,
    );
  }
  return { checksum: releaseChecksum(files), latestVersion: catalog.latest, files, totalBytes };
}

/** SHA-256 over the ordered (version, name, kind, file checksum) of a release's files. */
export function releaseChecksum(
  files: readonly Omit<ReleaseFile, 'content' | 'fileName' | 'noTransaction'>[],
): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file.version}\t${file.name}\t${file.kind}\t${file.checksum}\n`);
  return hash.digest('hex');
}

/** Rebuilds the catalog a release holds; its files' checksums are those the release recorded. */
export function catalogOfRelease(
  checksum: string,
  files: readonly Pick<ReleaseFile, 'fileName' | 'content'>[],
): MigrationCatalog {
  const dir = `release:${checksum}`;
  return buildCatalog(
    dir,
    files.map((file) => ({ fileName: file.fileName, path: `${dir}/${file.fileName}`, bytes: file.content })),
  );
}
