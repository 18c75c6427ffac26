-- Run kinds cannot be removed from an enum; VERIFY and ADOPT stay, unused.
DROP INDEX control_plane.idx_tenant_databases_fingerprint_hash;
ALTER TABLE control_plane.tenant_databases
  DROP COLUMN fingerprint_hash,
  DROP COLUMN fingerprint_expected_hash,
  DROP COLUMN fingerprint_matches,
  DROP COLUMN fingerprint_differences,
  DROP COLUMN fingerprint_computed_at;
DROP TABLE control_plane.expected_fingerprints;
ALTER TABLE control_plane.migration_runs DROP COLUMN allow_drift, DROP COLUMN adopt_options;
