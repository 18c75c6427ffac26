/**
 * Where backup files live. A small interface so another store (object storage) can be added; the
 * local-directory store (BACKUP_DIR) writes each file atomically: under a temporary name in the
 * same directory, fsync'd, renamed into place, and the directory fsync'd, so a crash leaves either
 * no file or the whole file under its key, never a partial one.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** What a stored file is: its size and SHA-256 (hex). */
export interface StoredFile {
  readonly sizeBytes: number;
  readonly sha256: string;
}

export interface BackupStorage {
  /**
   * Stores a new file under `key`: `produce` writes it to the path it is given (a temporary one);
   * once it resolves, the file is made durable and appears under `key`. Nothing appears when
   * `produce` throws.
   */
  write(key: string, produce: (tempPath: string) => Promise<void>): Promise<StoredFile>;
  /** The size and SHA-256 of the file under `key` as it is now; null when there is none. */
  inspect(key: string): Promise<StoredFile | null>;
  /** Runs `fn` with a local path of the file under `key` (for pg_restore). */
  withLocalFile<T>(key: string, fn: (filePath: string) => Promise<T>): Promise<T>;
  /** Removes the file under `key`; a missing file is fine. */
  remove(key: string): Promise<void>;
}

// Keys are ours (`<tenant id>/<backup id>.dump`); anything else is refused before it reaches a path.
const KEY = /^[0-9a-z-]{1,64}\/[0-9a-z-]{1,64}\.dump$/;

/** A BackupStorage in a local directory (created on first write). */
export function createLocalBackupStorage(directory: string): BackupStorage {
  const root = path.resolve(directory);

  function pathOf(key: string): string {
    if (!KEY.test(key)) throw new Error(`Invalid backup storage key "${key}"`);
    return path.join(root, key);
  }

  async function write(key: string, produce: (tempPath: string) => Promise<void>): Promise<StoredFile> {
    const final = pathOf(key);
    const dir = path.dirname(final);
    await mkdir(dir, { recursive: true });
    const temp = path.join(dir, `.${path.basename(final)}.${randomUUID()}.tmp`);
    try {
      await produce(temp);
      await fsyncFile(temp);
      const stored = await hashFile(temp);
      await rename(temp, final);
      await fsyncFile(dir);
      return stored;
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async function inspect(key: string): Promise<StoredFile | null> {
    const file = pathOf(key);
    try {
      await stat(file);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return null;
      throw error;
    }
    return hashFile(file);
  }

  async function withLocalFile<T>(key: string, fn: (filePath: string) => Promise<T>): Promise<T> {
    return fn(pathOf(key));
  }

  async function remove(key: string): Promise<void> {
    await rm(pathOf(key), { force: true });
  }

  return { write, inspect, withLocalFile, remove };
}

/** The size and SHA-256 of a file, read as a stream. */
export async function hashFile(file: string): Promise<StoredFile> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    sizeBytes += (chunk as Buffer).length;
  }
  return { sizeBytes, sha256: hash.digest('hex') };
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
