ALTER TABLE control_plane.migration_run_targets DROP COLUMN job_id;
