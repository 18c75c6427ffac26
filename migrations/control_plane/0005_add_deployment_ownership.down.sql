ALTER TABLE control_plane.tenant_databases DROP COLUMN IF EXISTS adopt_unmarked;
DROP TABLE IF EXISTS control_plane.deployment;
