DROP INDEX IF EXISTS control_plane.idx_run_targets_canary;
