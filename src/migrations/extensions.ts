/**
 * Shared objects of a tenants database. A tenant's `search_path` is its own schema, then the
 * extensions schema: never `public`, which every tenant of a shared database could reach (a down
 * file on a drifted tenant once dropped `public.audit_events`). `CREATE EXTENSION` without
 * `SCHEMA` installs into the first schema of `search_path`, the tenant's own, where the next tenant
 * cannot see it; so around any file that mentions an extension the engine makes sure the
 * extensions schema exists, and afterwards moves every extension the file created in the tenant
 * schema into it (`ALTER EXTENSION ... SET SCHEMA`), in the same transaction. No SQL parser: the
 * word "extension" in a file is enough to add the two statements, and they are harmless otherwise.
 */
import pg from 'pg';
import { quoteSchema } from '../db/pg.js';
import { advisoryLockKey } from './advisory-lock.js';

/** Where extensions live in every database the service migrates; owned by the service, USAGE for all. */
export const EXTENSIONS_SCHEMA = 'control_plane_extensions';

/** The schemas a target's statements see: its own, then the shared extensions. */
export function searchPathOf(schema: string): string {
  return `${quoteSchema(schema)}, ${EXTENSIONS_SCHEMA}`;
}

/** Whether a file may create an extension (and so needs `extensionsPreludeSql` and `relocateExtensionsSql`). */
export function mentionsExtension(sql: string | null): boolean {
  return sql !== null && /extension/i.test(sql);
}

// Serializes the few transactions that create the extensions schema or an extension in one database.
const EXTENSIONS_LOCK = advisoryLockKey(EXTENSIONS_SCHEMA);

/**
 * Prepares the database for a file that may create an extension: creates the extensions schema
 * when missing (USAGE for everybody, CREATE for nobody but its owner) and takes the database's
 * extensions lock, so two tenants creating the same extension take turns instead of one failing on
 * a duplicate key; then remembers which extensions exist, for `relocateExtensionsSql`. With
 * `revokePublicCreate` (provisioning) it also revokes CREATE on `public` from PUBLIC when a role
 * still has it. The lock is only taken when something is missing or a file needs it.
 */
export function prepareDatabaseSql({
  lock,
  revokePublicCreate,
}: {
  readonly lock: boolean;
  readonly revokePublicCreate: boolean;
}): string {
  const publicCreate = `EXISTS (SELECT 1 FROM pg_namespace n,
      aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
      WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE')`;
  const needed = [
    `to_regnamespace('${EXTENSIONS_SCHEMA}') IS NULL`,
    ...(revokePublicCreate ? [publicCreate] : []),
  ].join(' OR ');
  return `DO $cp$ BEGIN
    IF ${lock ? 'true' : needed} THEN
      PERFORM pg_advisory_xact_lock(${EXTENSIONS_LOCK}::bigint);
      IF to_regnamespace('${EXTENSIONS_SCHEMA}') IS NULL THEN
        -- The check above can miss a schema that a transaction we waited for just committed (its
        -- catalog change is not seen yet): the creator granted USAGE, so nothing is left to do.
        BEGIN
          CREATE SCHEMA ${EXTENSIONS_SCHEMA};
          GRANT USAGE ON SCHEMA ${EXTENSIONS_SCHEMA} TO PUBLIC;
        EXCEPTION WHEN duplicate_schema OR unique_violation THEN NULL;
        END;
      END IF;
      ${revokePublicCreate ? `IF ${publicCreate} THEN REVOKE CREATE ON SCHEMA public FROM PUBLIC; END IF;` : ''}
    END IF;
    PERFORM set_config('cp.extensions_before', coalesce((SELECT string_agg(oid::text, ',') FROM pg_extension), ''), false);
  END $cp$`;
}

/**
 * Moves the extensions created since `prepareDatabaseSql` into the tenant schema over to the
 * extensions schema; one that cannot be moved fails the file with what to do instead.
 */
export function relocateExtensionsSql(schema: string): string {
  const literal = pg.escapeLiteral(quoteSchema(schema));
  return `DO $cp$ DECLARE e record; BEGIN
    FOR e IN SELECT extname, extrelocatable FROM pg_extension
              WHERE extnamespace = to_regnamespace(${literal})
                AND NOT oid::text = ANY (string_to_array(current_setting('cp.extensions_before', true), ','))
    LOOP
      IF NOT e.extrelocatable THEN
        RAISE EXCEPTION 'extension % was created in tenant schema %, where other tenants cannot use it, and cannot be moved', e.extname, ${literal}
          USING ERRCODE = '55000', HINT = 'create it with CREATE EXTENSION IF NOT EXISTS ... SCHEMA ${EXTENSIONS_SCHEMA}';
      END IF;
      EXECUTE format('ALTER EXTENSION %I SET SCHEMA ${EXTENSIONS_SCHEMA}', e.extname);
    END LOOP;
  END $cp$`;
}
