-- A job may work several targets of one run, one after the other (a lane, see
-- src/runs/run-machine.ts): the job that holds a target, set when a job claims it or takes it
-- over from the window for its next turn. NULL until then; an unclaimed target's job, if it has
-- one, is its own id. The reconciler looks for the holder's job, not the target's.
ALTER TABLE control_plane.migration_run_targets ADD COLUMN job_id uuid;
-- The claim finds the target a job holds by job id among the few targets in flight.
CREATE INDEX idx_run_targets_job ON control_plane.migration_run_targets (job_id)
  WHERE status IN ('queued', 'running');
