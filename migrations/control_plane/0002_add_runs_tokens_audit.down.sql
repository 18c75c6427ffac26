DROP TABLE IF EXISTS control_plane.audit_log;
DROP TABLE IF EXISTS control_plane.api_tokens;
DROP TABLE IF EXISTS control_plane.migration_run_targets;
DROP TABLE IF EXISTS control_plane.migration_runs;
DROP INDEX IF EXISTS control_plane.uq_tenant_databases_location;
ALTER TABLE control_plane.tenant_databases
  DROP COLUMN IF EXISTS isolation, DROP COLUMN IF EXISTS schema_name,
  DROP COLUMN IF EXISTS schema_version, DROP COLUMN IF EXISTS last_error;
ALTER TABLE control_plane.tenants DROP COLUMN IF EXISTS deleted_at;
DROP TYPE IF EXISTS control_plane.api_role;
DROP TYPE IF EXISTS control_plane.transaction_mode;
DROP TYPE IF EXISTS control_plane.target_status;
DROP TYPE IF EXISTS control_plane.run_status;
DROP TYPE IF EXISTS control_plane.run_kind;
DROP TYPE IF EXISTS control_plane.isolation_mode;
