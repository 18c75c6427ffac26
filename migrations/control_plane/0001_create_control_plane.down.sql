DROP TABLE IF EXISTS control_plane.system_config;
DROP TABLE IF EXISTS control_plane.tenant_databases;
DROP TABLE IF EXISTS control_plane.tenants;
DROP FUNCTION IF EXISTS control_plane.set_updated_at();
DROP TYPE IF EXISTS control_plane.database_status;
DROP TYPE IF EXISTS control_plane.tenant_status;
DROP TYPE IF EXISTS control_plane.tenant_environment;
