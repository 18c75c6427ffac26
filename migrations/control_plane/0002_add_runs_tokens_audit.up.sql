-- What the service needs beyond seed 002: isolation and cached versions on tenant databases,
-- soft deletion of tenants, migration runs and their targets, API tokens and the audit log.
CREATE TYPE control_plane.isolation_mode AS ENUM ('schema', 'database');
CREATE TYPE control_plane.run_kind AS ENUM ('provision', 'migrate', 'rollback');
CREATE TYPE control_plane.run_status AS ENUM ('queued', 'running', 'succeeded', 'failed', 'halted', 'cancelled');
-- 'queued' is internal: a target handed to the queue and not yet picked up (PENDING in the API).
CREATE TYPE control_plane.target_status AS ENUM ('pending', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled');
CREATE TYPE control_plane.transaction_mode AS ENUM ('per_tenant', 'per_migration');
CREATE TYPE control_plane.api_role AS ENUM ('viewer', 'operator', 'admin');

ALTER TABLE control_plane.tenants ADD COLUMN deleted_at timestamptz;

ALTER TABLE control_plane.tenant_databases
  ADD COLUMN isolation control_plane.isolation_mode NOT NULL DEFAULT 'schema',
  ADD COLUMN schema_name varchar(63),
  ADD COLUMN schema_version varchar(64),
  ADD COLUMN last_error text;
-- One physical home per tenant schema or database on a server.
CREATE UNIQUE INDEX uq_tenant_databases_location
  ON control_plane.tenant_databases (host, port, database_name, coalesce(schema_name, ''));

CREATE TABLE control_plane.migration_runs (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind             control_plane.run_kind NOT NULL,
  status           control_plane.run_status NOT NULL DEFAULT 'queued',
  target_version   varchar(64),
  dry_run          boolean NOT NULL DEFAULT false,
  concurrency      integer NOT NULL CHECK (concurrency > 0),
  max_failures     integer CHECK (max_failures > 0),
  canary_size      integer CHECK (canary_size > 0),
  transaction_mode control_plane.transaction_mode NOT NULL DEFAULT 'per_tenant',
  requested_by     varchar(255),
  total            integer NOT NULL DEFAULT 0,
  pending          integer NOT NULL DEFAULT 0,
  running          integer NOT NULL DEFAULT 0,
  succeeded        integer NOT NULL DEFAULT 0,
  failed           integer NOT NULL DEFAULT 0,
  skipped          integer NOT NULL DEFAULT 0,
  cancelled        integer NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz
);
CREATE INDEX idx_migration_runs_status ON control_plane.migration_runs (status);
CREATE INDEX idx_migration_runs_created_at ON control_plane.migration_runs (created_at DESC, id DESC);

CREATE TABLE control_plane.migration_run_targets (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  run_id             uuid NOT NULL REFERENCES control_plane.migration_runs (id) ON DELETE CASCADE,
  tenant_id          uuid NOT NULL REFERENCES control_plane.tenants (tenant_id) ON DELETE CASCADE,
  tenant_database_id uuid NOT NULL REFERENCES control_plane.tenant_databases (id) ON DELETE CASCADE,
  position           integer NOT NULL,
  canary             boolean NOT NULL DEFAULT false,
  status             control_plane.target_status NOT NULL DEFAULT 'pending',
  from_version       varchar(64),
  to_version         varchar(64),
  applied_versions   text[] NOT NULL DEFAULT '{}',
  planned_sql        text,
  error              text,
  error_code         varchar(5),
  attempts           integer NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  started_at         timestamptz,
  finished_at        timestamptz,
  duration_ms        integer,
  UNIQUE (run_id, tenant_database_id)
);
CREATE INDEX idx_run_targets_run_status ON control_plane.migration_run_targets (run_id, status, position);
CREATE INDEX idx_run_targets_tenant ON control_plane.migration_run_targets (tenant_id);

CREATE TABLE control_plane.api_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name         varchar(255) NOT NULL,
  role         control_plane.api_role NOT NULL,
  token_hash   char(64) NOT NULL UNIQUE,
  created_by   varchar(255),
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz,
  last_used_at timestamptz
);

CREATE TABLE control_plane.audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       varchar(255) NOT NULL,
  action      varchar(100) NOT NULL,
  target_type varchar(100),
  target_id   varchar(255),
  input       jsonb,
  outcome     varchar(50) NOT NULL,
  error       text
);
CREATE INDEX idx_audit_log_at ON control_plane.audit_log (at DESC);

CREATE TRIGGER trg_migration_runs_updated_at BEFORE UPDATE ON control_plane.migration_runs
  FOR EACH ROW EXECUTE FUNCTION control_plane.set_updated_at();
CREATE TRIGGER trg_migration_run_targets_updated_at BEFORE UPDATE ON control_plane.migration_run_targets
  FOR EACH ROW EXECUTE FUNCTION control_plane.set_updated_at();
