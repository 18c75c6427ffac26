-- Schema fingerprints (issue 13). Two new run kinds: VERIFY reads a tenant's fingerprint and
-- compares it with its version's expected one; ADOPT registers an existing schema as a tenant.
ALTER TYPE control_plane.run_kind ADD VALUE IF NOT EXISTS 'verify';
ALTER TYPE control_plane.run_kind ADD VALUE IF NOT EXISTS 'adopt';

-- The fingerprint of a scratch schema each catalog version was replayed into, computed once per
-- catalog (its checksum) and PostgreSQL major version (the catalog's deparsers differ between majors).
CREATE TABLE control_plane.expected_fingerprints (
  catalog_checksum char(64)    NOT NULL,
  server_major     integer     NOT NULL,
  version          varchar(64) NOT NULL,
  hash             char(64)    NOT NULL,
  description      jsonb       NOT NULL,
  computed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (catalog_checksum, server_major, version)
);

-- The last fingerprint read from each tenant database; differences are capped by the service.
ALTER TABLE control_plane.tenant_databases
  ADD COLUMN fingerprint_hash          char(64),
  ADD COLUMN fingerprint_expected_hash char(64),
  ADD COLUMN fingerprint_matches       boolean,
  ADD COLUMN fingerprint_differences   jsonb,
  ADD COLUMN fingerprint_computed_at   timestamptz;
CREATE INDEX idx_tenant_databases_fingerprint_hash ON control_plane.tenant_databases (fingerprint_hash);

-- A MIGRATE or ROLLBACK run leaves a drifted tenant untouched (its target fails at once) unless
-- the run was started with allowDrift.
ALTER TABLE control_plane.migration_runs ADD COLUMN allow_drift boolean NOT NULL DEFAULT false;

-- An ADOPT run's history source and versionMap, read by the worker for each of its targets.
ALTER TABLE control_plane.migration_runs ADD COLUMN adopt_options jsonb;
