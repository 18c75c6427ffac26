-- A dry-run ADOPT run registers nothing (issue 13): each of its targets names an existing schema
-- on a database server instead of a tenant database. Such a target has no tenant and no tenant
-- database; every other target has both and no schema of its own.
ALTER TABLE control_plane.migration_run_targets
  ALTER COLUMN tenant_id DROP NOT NULL,
  ALTER COLUMN tenant_database_id DROP NOT NULL,
  ADD COLUMN server_id uuid REFERENCES control_plane.database_servers (id) ON DELETE CASCADE,
  ADD COLUMN schema_name varchar(63),
  ADD CONSTRAINT ck_run_targets_tenant_or_schema CHECK (
    (tenant_id IS NOT NULL AND tenant_database_id IS NOT NULL AND server_id IS NULL AND schema_name IS NULL)
    OR (tenant_id IS NULL AND tenant_database_id IS NULL AND dry_run
        AND server_id IS NOT NULL AND schema_name IS NOT NULL));
