/** The control plane's table of expected fingerprints, over plain pg. */
import type { Pool } from 'pg';
import type { ExpectedFingerprintStore } from './expected-fingerprints.js';
import type { SchemaDescription, SchemaFingerprint } from './schema-description.js';

/** Reads and writes `control_plane.expected_fingerprints`. */
export function createExpectedFingerprintStore(pool: Pool): ExpectedFingerprintStore {
  return {
    async load(catalogChecksum, serverMajor) {
      const { rows } = await pool.query<{ version: string; hash: string; description: SchemaDescription }>(
        `SELECT version, hash, description FROM control_plane.expected_fingerprints
          WHERE catalog_checksum = $1 AND server_major = $2`,
        [catalogChecksum, serverMajor],
      );
      return new Map(rows.map((row) => [row.version, { hash: row.hash, description: row.description }]));
    },
    async save(catalogChecksum, serverMajor, fingerprints: ReadonlyMap<string, SchemaFingerprint>) {
      const entries = [...fingerprints];
      // Two processes may replay the same catalog at once; the first one's rows stay.
      await pool.query(
        `INSERT INTO control_plane.expected_fingerprints (catalog_checksum, server_major, version, hash, description)
         SELECT $1, $2, v.version, v.hash, v.description
           FROM unnest($3::text[], $4::text[], $5::jsonb[]) AS v(version, hash, description)
         ON CONFLICT DO NOTHING`,
        [
          catalogChecksum,
          serverMajor,
          entries.map(([version]) => version),
          entries.map(([, fingerprint]) => fingerprint.hash),
          entries.map(([, fingerprint]) => JSON.stringify(fingerprint.description)),
        ],
      );
    },
  };
}
