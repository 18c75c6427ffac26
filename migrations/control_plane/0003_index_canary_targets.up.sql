-- Canary decisions count only a run's canary targets (at most canary_size rows) instead of all of them.
CREATE INDEX idx_run_targets_canary ON control_plane.migration_run_targets (run_id, status) WHERE canary;
