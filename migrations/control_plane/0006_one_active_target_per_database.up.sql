-- The database holds "one run at a time per tenant database": at most one target that is not a
-- dry run is PENDING, QUEUED or RUNNING per tenant database. A target copies its run's dry_run,
-- since a partial index can only read its own row. Creating the index fails on a deployment
-- that already has two such targets on one database: end one of those runs first.
ALTER TABLE control_plane.migration_run_targets ADD COLUMN dry_run boolean NOT NULL DEFAULT false;
UPDATE control_plane.migration_run_targets t SET dry_run = true
  FROM control_plane.migration_runs r WHERE r.id = t.run_id AND r.dry_run;
CREATE UNIQUE INDEX uq_run_targets_one_active_per_database
  ON control_plane.migration_run_targets (tenant_database_id)
  WHERE status IN ('pending', 'queued', 'running') AND NOT dry_run;
