-- The control-plane schema exactly as the operators' guide (seed 002) describes it.
CREATE SCHEMA IF NOT EXISTS control_plane;

CREATE TYPE control_plane.tenant_environment AS ENUM ('development', 'staging', 'production');
CREATE TYPE control_plane.tenant_status AS ENUM ('active', 'inactive', 'suspended', 'pending');
CREATE TYPE control_plane.database_status AS ENUM ('active', 'inactive', 'migrating', 'error');

CREATE TABLE control_plane.tenants (
  tenant_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        varchar(255) NOT NULL UNIQUE,
  environment control_plane.tenant_environment NOT NULL DEFAULT 'development',
  status      control_plane.tenant_status NOT NULL DEFAULT 'pending',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE control_plane.tenant_databases (
  id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id                   uuid NOT NULL REFERENCES control_plane.tenants (tenant_id) ON DELETE CASCADE,
  connection_string_encrypted text NOT NULL,
  database_name               varchar(63) NOT NULL,
  host                        varchar(255) NOT NULL,
  port                        integer NOT NULL DEFAULT 5432,
  status                      control_plane.database_status NOT NULL DEFAULT 'inactive',
  created_at                  timestamptz NOT NULL DEFAULT now(),
  updated_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE control_plane.system_config (
  key        varchar(255) PRIMARY KEY,
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_tenants_status ON control_plane.tenants (status);
CREATE INDEX idx_tenant_databases_tenant_id ON control_plane.tenant_databases (tenant_id);
CREATE INDEX idx_tenant_databases_status ON control_plane.tenant_databases (status);

CREATE FUNCTION control_plane.set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TRIGGER trg_tenants_updated_at BEFORE UPDATE ON control_plane.tenants
  FOR EACH ROW EXECUTE FUNCTION control_plane.set_updated_at();
CREATE TRIGGER trg_tenant_databases_updated_at BEFORE UPDATE ON control_plane.tenant_databases
  FOR EACH ROW EXECUTE FUNCTION control_plane.set_updated_at();
CREATE TRIGGER trg_system_config_updated_at BEFORE UPDATE ON control_plane.system_config
  FOR EACH ROW EXECUTE FUNCTION control_plane.set_updated_at();

INSERT INTO control_plane.tenants (name, environment, status)
VALUES ('system_admin', 'production', 'active')
ON CONFLICT (name) DO NOTHING;
