DROP INDEX control_plane.idx_run_targets_job;
ALTER TABLE control_plane.migration_run_targets DROP COLUMN job_id;
