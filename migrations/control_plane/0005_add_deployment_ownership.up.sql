-- Ownership of tenant schemas and databases (issue 10 item 7). Each control-plane deployment has
-- one id; provisioning writes it as a comment on every schema or database it creates, and the
-- service checks it before it drops or migrates one, so two deployments sharing a tenant server
-- never touch each other's tenants. The one row is inserted on first use, not here, so a
-- database cloned from a migrated template (as the tests do) gets an id of its own.
CREATE TABLE control_plane.deployment (
  singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  deployment_id uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Tenant databases registered before markers existed carry no marker: they may adopt their
-- unmarked schema or database (the marker is written on first touch). New rows may not.
ALTER TABLE control_plane.tenant_databases ADD COLUMN adopt_unmarked boolean NOT NULL DEFAULT true;
ALTER TABLE control_plane.tenant_databases ALTER COLUMN adopt_unmarked SET DEFAULT false;
