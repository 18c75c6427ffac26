DROP INDEX control_plane.idx_run_targets_running;
DROP INDEX control_plane.idx_run_targets_deferred;
ALTER TABLE control_plane.migration_run_targets DROP COLUMN deferred_at;
ALTER TABLE control_plane.tenant_databases DROP COLUMN server_id;
DROP TABLE control_plane.database_servers;
