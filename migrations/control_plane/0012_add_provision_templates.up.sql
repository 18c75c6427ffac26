-- Provisioning templates (issue 16): the end state of a catalog, captured once per catalog (its
-- checksum over versions, names and up-file checksums, as expected_fingerprints) and PostgreSQL
-- major version from a scratch schema the catalog was replayed into (pg_dump's SQL, the scratch
-- schema's name in it to be replaced by the tenant's), and the fingerprint it was verified against.
CREATE TABLE control_plane.provision_templates (
  catalog_checksum char(64)    NOT NULL,
  server_major     integer     NOT NULL,
  placeholder      varchar(63) NOT NULL,
  template_sql     text        NOT NULL,
  fingerprint_hash char(64)    NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (catalog_checksum, server_major)
);
