-- Catalog releases: immutable snapshots of a tenant catalog directory, deduplicated by checksum.
-- A run pins one (catalog_release_id), and workers execute that release's SQL, never their disk's.
CREATE TABLE control_plane.catalog_releases (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- sha256 over the ordered (version, name, kind, file checksum) of its files.
  checksum       char(64) NOT NULL,
  latest_version varchar(64),
  file_count     integer NOT NULL CHECK (file_count >= 0),
  total_bytes    bigint NOT NULL CHECK (total_bytes >= 0),
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT uq_catalog_releases_checksum UNIQUE (checksum)
);

CREATE TABLE control_plane.catalog_release_files (
  release_id     uuid NOT NULL REFERENCES control_plane.catalog_releases (id) ON DELETE CASCADE,
  version        varchar(64) NOT NULL,
  kind           varchar(8) NOT NULL CHECK (kind IN ('up', 'down', 'verify')),
  file_name      text NOT NULL,
  name           text NOT NULL,
  no_transaction boolean NOT NULL,
  content        bytea NOT NULL,
  checksum       char(64) NOT NULL,
  PRIMARY KEY (release_id, version, kind)
);

-- Nullable: runs created before releases existed pin none (workers use their own catalog for them).
ALTER TABLE control_plane.migration_runs
  ADD COLUMN catalog_release_id uuid REFERENCES control_plane.catalog_releases (id);
