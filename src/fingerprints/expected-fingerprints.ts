/**
 * Expected fingerprints: for each version of a catalog, the fingerprint of a scratch schema the
 * catalog was replayed into up to that version, inside a transaction that is rolled back. One
 * replay yields every version; the result is kept in memory and in the control plane
 * (`expected_fingerprints`) per catalog checksum and PostgreSQL major version.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { quoteSchema } from '../db/pg.js';
import { LEDGER_TABLE, parseVersion, searchPathOf, type MigrationFile } from '../migrations/index.js';
import { readSchemaFingerprint } from './read-schema.js';
import type { SchemaFingerprint } from './schema-description.js';

/** What replaying needs of a catalog: its files in order (a disk catalog or a release). */
export interface FingerprintCatalog {
  readonly files: readonly Pick<MigrationFile, 'version' | 'name' | 'checksum' | 'upSql' | 'transactional'>[];
}

/** Where expected fingerprints are kept between processes (the control plane's table). */
export interface ExpectedFingerprintStore {
  load(catalogChecksum: string, serverMajor: number): Promise<Map<string, SchemaFingerprint>>;
  save(
    catalogChecksum: string,
    serverMajor: number,
    fingerprints: ReadonlyMap<string, SchemaFingerprint>,
  ): Promise<void>;
}

/** The expected fingerprint of every version of a catalog, "0" being the empty schema. */
export interface ExpectedFingerprints {
  /** Every version's expected fingerprint, replaying the catalog on `pool`'s server once. */
  all(pool: Pool): Promise<ReadonlyMap<string, SchemaFingerprint>>;
  /** The expected fingerprint of `version` (null when the catalog has no such version). */
  forVersion(pool: Pool, version: string | null): Promise<SchemaFingerprint | null>;
}

/** A catalog's identity for the cache: the SHA-256 over the description format and each file's version, name and checksum. */
export function catalogChecksumOf(catalog: FingerprintCatalog): string {
  const hash = createHash('sha256');
  // Bumped when the description read from the catalogs changes shape: old cached rows then no longer match.
  hash.update(`${DESCRIPTION_FORMAT}\n`);
  for (const file of catalog.files) hash.update(`${file.version}\0${file.name}\0${file.checksum}\n`);
  return hash.digest('hex');
}

// The version of the description read-schema.ts produces; part of the cache key.
const DESCRIPTION_FORMAT = 'description 2';

// How long a failed replay answers for itself before the next call replays again: every target of
// a fleet run asks (FINGERPRINT_AFTER_TARGET), and a catalog that cannot be replayed must not cost
// each of them a replay.
const FAILED_REPLAY_KEPT_MS = 60_000;

/** Expected fingerprints of one catalog, cached in memory and in `store`. */
export function createExpectedFingerprints(
  catalog: FingerprintCatalog,
  store: ExpectedFingerprintStore,
  /** The deployment's ledger table name, left out of fingerprints as tenants' reads leave it out. */
  ledgerTable: string = LEDGER_TABLE,
  options: { readonly failedReplayKeptMs?: number } = {},
): ExpectedFingerprints {
  const failedReplayKeptMs = options.failedReplayKeptMs ?? FAILED_REPLAY_KEPT_MS;
  const checksum = catalogChecksumOf(catalog);
  const byMajor = new Map<number, Promise<ReadonlyMap<string, SchemaFingerprint>>>();

  async function compute(pool: Pool, major: number): Promise<ReadonlyMap<string, SchemaFingerprint>> {
    const stored = await store.load(checksum, major);
    if (stored.size === catalog.files.length + 1) return stored;
    const replayed = await replayCatalog(pool, catalog, ledgerTable);
    await store.save(checksum, major, replayed);
    return replayed;
  }

  async function all(pool: Pool): Promise<ReadonlyMap<string, SchemaFingerprint>> {
    const major = await cachedServerMajorOf(pool);
    let pending = byMajor.get(major);
    if (!pending) {
      const computing = compute(pool, major);
      pending = computing;
      // A failed replay is kept only a while: a call after that tries again.
      computing.catch(() => {
        const forget = setTimeout(() => {
          if (byMajor.get(major) === computing) byMajor.delete(major);
        }, failedReplayKeptMs);
        forget.unref();
      });
      byMajor.set(major, computing);
    }
    return pending;
  }

  return {
    all,
    async forVersion(pool, version) {
      const fingerprints = await all(pool);
      return fingerprints.get(normalVersion(catalog, version)) ?? null;
    },
  };
}

/** The expected fingerprints of any catalog (a run's pinned release, or the process's own), by checksum. */
export type ExpectedFingerprintsOf = (catalog: FingerprintCatalog) => ExpectedFingerprints;

/**
 * One ExpectedFingerprints per catalog checksum, made on first use and kept: runs pin releases,
 * and each release's catalog has its own expected structures (a worker's disk catalog may lack a
 * release's versions, or differ from it).
 */
export function createExpectedFingerprintsOf(
  store: ExpectedFingerprintStore,
  ledgerTable: string = LEDGER_TABLE,
): ExpectedFingerprintsOf {
  const byChecksum = new Map<string, ExpectedFingerprints>();
  // Asked for every target: a catalog object seen before skips hashing its file list again.
  const byCatalog = new WeakMap<FingerprintCatalog, ExpectedFingerprints>();
  return (catalog) => {
    let expected = byCatalog.get(catalog);
    if (expected) return expected;
    const checksum = catalogChecksumOf(catalog);
    expected = byChecksum.get(checksum);
    if (!expected)
      byChecksum.set(checksum, (expected = createExpectedFingerprints(catalog, store, ledgerTable)));
    byCatalog.set(catalog, expected);
    return expected;
  };
}

/** The catalog's spelling of a version ("3" -> "0003"); "0" for none. */
export function normalVersion(catalog: FingerprintCatalog, version: string | null): string {
  if (version === null) return '0';
  const order = parseVersion(version);
  if (order === 0n) return '0';
  return catalog.files.find((file) => order !== null && BigInt(file.version) === order)?.version ?? version;
}

/**
 * Replays the whole catalog into a scratch schema in one transaction, reading the fingerprint
 * before the first file and after each one, then rolls everything back. No-transaction files run
 * without CONCURRENTLY (the index they build is the same, and nobody else sees the scratch schema).
 */
export async function replayCatalog(
  pool: Pool,
  catalog: FingerprintCatalog,
  ledgerTable: string = LEDGER_TABLE,
): Promise<Map<string, SchemaFingerprint>> {
  const scratch = `fingerprint_scratch_${randomBytes(6).toString('hex')}`;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`CREATE SCHEMA ${quoteSchema(scratch)}`);
    const fingerprints = new Map<string, SchemaFingerprint>();
    fingerprints.set('0', await readSchemaFingerprint(client, scratch, ledgerTable));
    for (const file of catalog.files) {
      // Each file runs in the scratch schema (the read leaves its own search_path in the transaction).
      await client.query(`SET LOCAL search_path TO ${searchPathOf(scratch)}`);
      const sql = file.transactional ? file.upSql : file.upSql.replace(/\bCONCURRENTLY\b/gi, '');
      try {
        await client.query(sql);
      } catch (error) {
        throw new Error(
          `replaying ${file.version}_${file.name} for its expected fingerprint failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
      fingerprints.set(file.version, await readSchemaFingerprint(client, scratch, ledgerTable));
    }
    await client.query('ROLLBACK');
    client.release();
    return fingerprints;
  } catch (error) {
    // Destroyed, not returned: its transaction (or a lost connection) must not reach the pool's next user.
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

// A pool's server does not change its major version under it: asked once per pool, not per target.
const majors = new WeakMap<Pool, Promise<number>>();

function cachedServerMajorOf(pool: Pool): Promise<number> {
  let major = majors.get(pool);
  if (!major) {
    major = serverMajorOf(pool);
    major.catch(() => majors.delete(pool));
    majors.set(pool, major);
  }
  return major;
}

async function serverMajorOf(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ major: number }>(
    `SELECT current_setting('server_version_num')::int / 10000 AS major`,
  );
  return rows[0]?.major ?? 0;
}
