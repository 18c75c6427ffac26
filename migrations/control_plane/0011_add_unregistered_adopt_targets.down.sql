-- Targets of unregistered schemas (dry-run ADOPT runs) cannot exist without the columns: they go.
DELETE FROM control_plane.migration_run_targets WHERE tenant_database_id IS NULL;
ALTER TABLE control_plane.migration_run_targets
  DROP CONSTRAINT ck_run_targets_tenant_or_schema,
  DROP COLUMN server_id,
  DROP COLUMN schema_name,
  ALTER COLUMN tenant_id SET NOT NULL,
  ALTER COLUMN tenant_database_id SET NOT NULL;
