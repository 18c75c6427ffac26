ALTER TABLE control_plane.migration_runs DROP COLUMN catalog_release_id;
DROP TABLE control_plane.catalog_release_files;
DROP TABLE control_plane.catalog_releases;
