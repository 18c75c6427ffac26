-- PostgreSQL cannot drop enum labels: 'backup' and 'restore' stay in run_kind (unused).
ALTER TABLE control_plane.migration_runs DROP COLUMN IF EXISTS backup_id;
ALTER TABLE control_plane.migration_runs DROP COLUMN IF EXISTS backup;
DROP TABLE IF EXISTS control_plane.tenant_backups;
