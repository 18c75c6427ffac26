/**
 * Ownership markers (issue 10 item 7): every tenant schema (SCHEMA isolation) or database
 * (DATABASE isolation) this control plane provisions carries a comment naming its deployment id.
 * Before it drops, migrates or provisions into one, the service reads the comment: its own marker
 * is required, anything else is a ConflictError and nothing is touched. So a second deployment
 * sharing a tenant server (or an operator's schema that happens to have the right name) is never
 * adopted, altered or dropped.
 */
import pg from 'pg';
import { quoteDatabase, quoteSchema } from '../db/pg.js';
import { ConflictError } from '../errors.js';
import { isTenantObjectName } from './naming.js';

/** Start of every marker comment; the deployment id follows. Never change it: markers outlive releases. */
export const OWNERSHIP_MARKER_PREFIX = 'tenant-control-plane deployment ';
const DEPLOYMENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A tenant database row as the ownership check needs it. */
export interface OwnedLocation {
  readonly isolation: 'SCHEMA' | 'DATABASE';
  readonly databaseName: string;
  readonly schemaName: string | null;
  /** Registered before markers existed: an unmarked object may be adopted (see migration 0005). */
  readonly adoptUnmarked?: boolean;
}

/** What the check found: our marker, an object it adopted (legacy rows only), or no object at all. */
export type Ownership = 'owned' | 'adopted' | 'absent';

/** The schema or database exists but this deployment did not create it; nothing was changed. */
export class OwnershipConflictError extends ConflictError {
  constructor(
    readonly objectKind: 'schema' | 'database',
    readonly objectName: string,
    /** The other deployment's id, or null when the object carries no marker at all. */
    readonly ownerDeploymentId: string | null,
  ) {
    super(
      ownerDeploymentId
        ? `The ${objectKind} "${objectName}" belongs to another control-plane deployment (${ownerDeploymentId}); refusing to touch it`
        : `The ${objectKind} "${objectName}" exists without this control plane's ownership marker; refusing to touch it (drop or rename it, or give the tenant another name)`,
    );
  }
}

/** The comment that marks an object as created by deployment `deploymentId`. */
export function ownershipMarker(deploymentId: string): string {
  if (!DEPLOYMENT_ID.test(deploymentId)) throw new Error(`Invalid deployment id "${deploymentId}"`);
  return OWNERSHIP_MARKER_PREFIX + deploymentId;
}

/**
 * One statement, with literals only (so it can join a multi-statement round trip), returning one
 * row `{ marker }` when the tenant's schema (or database) exists and no row when it does not.
 * A schema is looked up in the current database: run it on a connection to the tenant database.
 */
export function ownershipQuery(location: OwnedLocation): string {
  if (location.isolation === 'DATABASE') {
    quoteDatabase(location.databaseName);
    return `SELECT shobj_description(oid, 'pg_database') AS marker FROM pg_database WHERE datname = ${pg.escapeLiteral(location.databaseName)}`;
  }
  const schema = schemaOf(location);
  quoteSchema(schema);
  return `SELECT obj_description(oid, 'pg_namespace') AS marker FROM pg_namespace WHERE nspname = ${pg.escapeLiteral(schema)}`;
}

/**
 * Decides from the row `ownershipQuery` returned: 'absent' (no row), 'owned' (our marker),
 * 'adopted' (no marker of any deployment, and the row may adopt: the caller writes our marker);
 * throws OwnershipConflictError otherwise.
 */
export function judgeOwnership(
  row: { marker: string | null } | undefined,
  location: OwnedLocation,
  deploymentId: string,
): Ownership {
  if (!row) return 'absent';
  const mine = ownershipMarker(deploymentId);
  if (row.marker === mine) return 'owned';
  const kind = location.isolation === 'DATABASE' ? 'database' : 'schema';
  const name = objectNameOf(location);
  const other = row.marker?.startsWith(OWNERSHIP_MARKER_PREFIX)
    ? row.marker.slice(OWNERSHIP_MARKER_PREFIX.length)
    : null;
  // Only names of the shape every tenant had before prefixes and markers (`tenant_…`) are adopted.
  if (!other && location.adoptUnmarked && isTenantObjectName(name)) return 'adopted';
  throw new OwnershipConflictError(kind, name, other);
}

/** `COMMENT ON SCHEMA|DATABASE … IS <marker>` for the tenant's object. */
export function markOwnedSql(location: OwnedLocation, deploymentId: string): string {
  const marker = pg.escapeLiteral(ownershipMarker(deploymentId));
  return location.isolation === 'DATABASE'
    ? `COMMENT ON DATABASE ${quoteDatabase(location.databaseName)} IS ${marker}`
    : `COMMENT ON SCHEMA ${quoteSchema(schemaOf(location))} IS ${marker}`;
}

/**
 * Checks that the tenant's schema (or database) is this deployment's before the caller alters or
 * drops it: resolves 'owned', 'adopted' (a legacy row's unmarked object, now marked) or 'absent';
 * throws OwnershipConflictError and changes nothing when another deployment or nobody marked it.
 * Call it on a connection to the tenant database, under the tenant's advisory lock.
 */
export async function assertOwned(
  client: Pick<pg.ClientBase, 'query'>,
  location: OwnedLocation,
  deploymentId: string,
): Promise<Ownership> {
  const result = await client.query<{ marker: string | null }>(ownershipQuery(location));
  const ownership = judgeOwnership(result.rows[0], location, deploymentId);
  if (ownership === 'adopted') await client.query(markOwnedSql(location, deploymentId));
  return ownership;
}

/**
 * The guard a migration or rollback target runs under the tenant's lock, before anything else
 * (MigrationTarget.guardSql): our marker passes; an unmarked object of a legacy row (or a schema
 * not created yet) gets our marker; another deployment's object, or an unmarked one that may not
 * be adopted, raises and the target fails with nothing touched. One statement, literals only.
 */
export function ownershipGuardSql(location: OwnedLocation, deploymentId: string): string {
  const mine = pg.escapeLiteral(ownershipMarker(deploymentId));
  const name = objectNameOf(location);
  const kind = location.isolation === 'DATABASE' ? 'database' : 'schema';
  const adoptable = Boolean(location.adoptUnmarked) && isTenantObjectName(name);
  const found =
    location.isolation === 'DATABASE'
      ? `shobj_description((SELECT oid FROM pg_database WHERE datname = current_database()), 'pg_database')`
      : `obj_description(to_regnamespace(${pg.escapeLiteral(name)}), 'pg_namespace')`;
  const mark =
    location.isolation === 'DATABASE'
      ? `EXECUTE format('COMMENT ON DATABASE %I IS %L', current_database(), ${mine})`
      : `COMMENT ON SCHEMA ${quoteSchema(name)} IS ${mine}`;
  const prefix = pg.escapeLiteral(OWNERSHIP_MARKER_PREFIX);
  // A tenant's database exists (we are connected to it); its schema may not be created yet.
  const whenAbsent =
    location.isolation === 'SCHEMA'
      ? `IF to_regnamespace(${pg.escapeLiteral(name)}) IS NULL THEN
      CREATE SCHEMA ${quoteSchema(name)};
      ${mark};
    ELSIF`
      : 'IF';
  return `DO $cp$ DECLARE found text := ${found}; BEGIN
    ${whenAbsent} found IS NOT DISTINCT FROM ${mine} THEN
      NULL;
    ELSIF found LIKE ${prefix} || '%' THEN
      RAISE EXCEPTION 'The ${kind} "%" belongs to another control-plane deployment (%); refusing to touch it',
        ${pg.escapeLiteral(name)}, substr(found, ${OWNERSHIP_MARKER_PREFIX.length + 1}) USING ERRCODE = '42501';
    ELSIF ${adoptable ? 'true' : 'false'} THEN
      ${mark};
    ELSE
      RAISE EXCEPTION 'The ${kind} "%" exists without this control plane''s ownership marker; refusing to touch it',
        ${pg.escapeLiteral(name)} USING ERRCODE = '42501';
    END IF;
  END $cp$`;
}

/** The name of the schema (SCHEMA isolation) or database (DATABASE isolation) a tenant lives in. */
export function objectNameOf(location: OwnedLocation): string {
  return location.isolation === 'DATABASE' ? location.databaseName : schemaOf(location);
}

function schemaOf(location: OwnedLocation): string {
  if (!location.schemaName) throw new Error('A SCHEMA-isolated tenant database has no schema name');
  return location.schemaName;
}
