-- Backups of tenants (issue 15): one row per pg_dump file, written once the file is in storage,
-- with its size and SHA-256 so a restore refuses a file that changed. Rows outlive their tenant's
-- deletion (a deleted tenant is restored from its last backup); deleted_at marks a file removed
-- by retention or purge. Runs of kind BACKUP and RESTORE use the run machine like any other.
ALTER TYPE control_plane.run_kind ADD VALUE IF NOT EXISTS 'backup';
ALTER TYPE control_plane.run_kind ADD VALUE IF NOT EXISTS 'restore';

CREATE TABLE control_plane.tenant_backups (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES control_plane.tenants (tenant_id) ON DELETE CASCADE,
  tenant_database_id uuid NOT NULL REFERENCES control_plane.tenant_databases (id) ON DELETE CASCADE,
  created_at         timestamptz NOT NULL DEFAULT now(),
  size_bytes         bigint NOT NULL CHECK (size_bytes >= 0),
  sha256             char(64) NOT NULL,
  -- The tenant's ledger version when it was dumped; NULL for a tenant with an empty ledger.
  schema_version     varchar(64),
  reason             varchar(255) NOT NULL,
  -- Where the file is, relative to the storage (BACKUP_DIR): never an absolute path.
  storage_key        varchar(512) NOT NULL UNIQUE,
  -- pg_dump's format and the server's major version, for restoring with matching tools.
  format             varchar(16) NOT NULL DEFAULT 'custom',
  server_major       integer NOT NULL,
  -- The run (and target) that took it, if any.
  run_id             uuid REFERENCES control_plane.migration_runs (id) ON DELETE SET NULL,
  deleted_at         timestamptz
);
CREATE INDEX idx_tenant_backups_tenant ON control_plane.tenant_backups (tenant_id, created_at DESC);

-- backup: every target backs its tenant up before it changes it. backup_id: the backup a RESTORE
-- run restores.
ALTER TABLE control_plane.migration_runs ADD COLUMN backup boolean NOT NULL DEFAULT false;
ALTER TABLE control_plane.migration_runs ADD COLUMN backup_id uuid
  REFERENCES control_plane.tenant_backups (id) ON DELETE SET NULL;
