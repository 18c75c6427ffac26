-- Database servers (issue 12): the PostgreSQL servers tenants live on, each with the sealed
-- connection string of a role that may create schemas and databases there, and a budget of
-- targets that may migrate on it at once across every run and worker.
CREATE TABLE control_plane.database_servers (
  id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name                        varchar(63) NOT NULL,
  -- Sealed (crypto/secret-box.ts) bound to the row id; never returned, logged or published.
  connection_string_encrypted text NOT NULL,
  host                        varchar(255) NOT NULL,
  port                        integer NOT NULL,
  accepting_tenants           boolean NOT NULL DEFAULT true,
  max_concurrent_migrations   integer NOT NULL DEFAULT 4 CHECK (max_concurrent_migrations >= 1),
  created_at                  timestamptz NOT NULL DEFAULT now(),
  updated_at                  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT database_servers_name_key UNIQUE (name)
);
CREATE TRIGGER trg_database_servers_updated_at BEFORE UPDATE ON control_plane.database_servers
  FOR EACH ROW EXECUTE FUNCTION control_plane.set_updated_at();

-- NULL only on rows registered before this migration, until the next start registers the
-- `default` server (TENANT_DATABASE_URL, which this file cannot know) and moves them onto it.
ALTER TABLE control_plane.tenant_databases
  ADD COLUMN server_id uuid REFERENCES control_plane.database_servers (id);
CREATE INDEX idx_tenant_databases_server_id ON control_plane.tenant_databases (server_id);

-- A target whose server's budget was spent when a worker tried to claim it: QUEUED without a
-- job, woken (cleared, enqueued) by the next finish on that server or by the reconciler.
ALTER TABLE control_plane.migration_run_targets ADD COLUMN deferred_at timestamptz;
CREATE INDEX idx_run_targets_deferred ON control_plane.migration_run_targets (deferred_at)
  WHERE deferred_at IS NOT NULL AND status = 'queued';
-- The claim counts the RUNNING targets of a server: few rows, found without a scan.
CREATE INDEX idx_run_targets_running ON control_plane.migration_run_targets (tenant_database_id)
  WHERE status = 'running';
