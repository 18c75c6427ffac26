DROP INDEX IF EXISTS control_plane.uq_run_targets_one_active_per_database;
ALTER TABLE control_plane.migration_run_targets DROP COLUMN IF EXISTS dry_run;
