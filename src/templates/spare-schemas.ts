/**
 * Spare schemas: a few schemas made ahead of time from the catalog's template, each complete
 * (objects, data, ledger) and verified when made, waiting in the tenants database under a name
 * `cp_spare_<deployment 8>_<catalog 12>_<random 8>`. A new tenant takes one by renaming it, which
 * costs a catalog row instead of every object: `ALTER SCHEMA … RENAME` keeps every object, and
 * defaults, views and triggers refer to their objects by oid, not by the schema's name. The work of
 * the template moves off the new tenant's path onto the spare's, made after the last one was taken.
 *
 * Two workers never take the same spare: each candidate is taken under a transaction-level
 * advisory lock tried without waiting, and checked to still exist once locked. The renaming
 * transaction also marks the schema, dates the ledger, and reads the fingerprint; it commits only
 * when the fingerprint is the expected one. A spare is one transaction when made and one when
 * taken: a crash leaves either a whole spare or none.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { quoteSchema } from '../db/pg.js';
import { AppError } from '../errors.js';
import { describeSchemaSql, fingerprintFromResults } from '../fingerprints/read-schema.js';
import type { SchemaFingerprint } from '../fingerprints/schema-description.js';
import { ledgerTableOf, schemaLockKey, withTargetTransaction } from '../migrations/index.js';
import type { MigrateResult, MigrationCatalog, MigrationTarget } from '../migrations/index.js';
import { applySchemaTemplate } from './schema-template.js';
import type { StoredSchemaTemplate } from './template-store.js';

// Raised by the claim when the tenant's schema exists already or no spare is free.
const NO_SPARE_SQLSTATE = 'CPTS0';

/** A spare's structure was not the expected one when taken; it was not taken. */
export class SpareMismatchError extends AppError<'SPARE_MISMATCH'> {
  constructor(readonly spare: string) {
    super('SPARE_MISMATCH', `spare schema ${spare} does not have the catalog's expected structure`);
  }
}

/** The names of one deployment's spares, of every catalog. */
export function deploymentSparePrefix(deploymentId: string): string {
  return `cp_spare_${deploymentId.replace(/-/g, '').slice(0, 8)}_`;
}

/** The names of one deployment's spares of one catalog. */
export function sparePrefixOf(deploymentId: string, catalogChecksum: string): string {
  return `${deploymentSparePrefix(deploymentId)}${catalogChecksum.slice(0, 12)}_`;
}

export interface MakeSpareInput {
  readonly pool: pg.Pool;
  readonly databaseName: string;
  readonly prefix: string;
  readonly catalog: MigrationCatalog;
  readonly template: StoredSchemaTemplate;
  readonly expected: SchemaFingerprint;
  readonly lockTimeoutMs: number;
}

/** Makes one spare from the template, verified, in one transaction; returns its name. */
export async function makeSpare(input: MakeSpareInput): Promise<string> {
  const spare = `${input.prefix}${randomBytes(4).toString('hex')}`;
  await applySchemaTemplate({
    pool: input.pool,
    target: {
      schema: spare,
      lockKey: schemaLockKey(input.databaseName, spare),
      guardSql: `CREATE SCHEMA ${quoteSchema(spare)}`,
    },
    catalog: input.catalog,
    template: input.template,
    expected: input.expected,
    lockTimeoutMs: input.lockTimeoutMs,
  });
  return spare;
}

/** How many spares named `prefix…` exist. */
export async function countSpares(pool: pg.Pool, prefix: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_namespace WHERE starts_with(nspname, $1)',
    [prefix],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Drops this deployment's spares of other catalogs (a release replaced them), each only when no
 * claim holds it; returns how many it looked at.
 */
export async function dropOtherSpares(
  pool: pg.Pool,
  deploymentPrefix: string,
  keep: string,
): Promise<number> {
  const { rows } = await pool.query<{ nspname: string }>(
    'SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) AND NOT starts_with(nspname, $2)',
    [deploymentPrefix, keep],
  );
  let dropped = 0;
  for (const { nspname } of rows) {
    const name = pg.escapeLiteral(nspname);
    // One statement, one transaction: the claim's lock is tried and, when free, held while it drops.
    const result = await pool.query(`DO $cp$ BEGIN
      IF pg_try_advisory_xact_lock(hashtextextended(${name}, 0)) THEN
        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', ${name});
      END IF;
    END $cp$`);
    dropped += result ? 1 : 0;
  }
  return dropped;
}

export interface ClaimSpareInput {
  readonly pool: pg.Pool;
  /** The new tenant's target; the claim runs under its lock. */
  readonly target: Pick<MigrationTarget, 'schema' | 'lockKey'>;
  readonly prefix: string;
  /** `COMMENT ON SCHEMA <tenant> IS <marker>`: the ownership marker, written in the same transaction. */
  readonly markSql: string;
  readonly catalog: MigrationCatalog;
  readonly expected: SchemaFingerprint;
  readonly lockTimeoutMs: number;
}

/**
 * Renames a free spare to the tenant's schema and marks it, in one transaction that commits only
 * when its fingerprint is the expected one. Null, with nothing changed, when the tenant's schema
 * exists already (a retry: the caller's other paths handle it) or no spare is free; throws
 * SpareMismatchError (rolled back) for a spare that is not the expected structure.
 */
export async function claimSpare(input: ClaimSpareInput): Promise<MigrateResult | null> {
  const { target, catalog } = input;
  const tenant = pg.escapeLiteral(target.schema);
  const claim = `DO $cp$ DECLARE candidate text; BEGIN
    IF to_regnamespace(${tenant}) IS NOT NULL THEN
      RAISE EXCEPTION 'schema % exists', ${tenant} USING ERRCODE = '${NO_SPARE_SQLSTATE}';
    END IF;
    FOR candidate IN SELECT nspname FROM pg_namespace WHERE starts_with(nspname, ${pg.escapeLiteral(input.prefix)}) LOOP
      -- Locked, then looked up again: another claim may have renamed it since this loop began.
      IF pg_try_advisory_xact_lock(hashtextextended(candidate, 0)) AND to_regnamespace(candidate) IS NOT NULL THEN
        PERFORM set_config('cp.spare', candidate, true);
        EXECUTE format('ALTER SCHEMA %I RENAME TO %I', candidate, ${tenant});
        RETURN;
      END IF;
    END LOOP;
    RAISE EXCEPTION 'no spare schema is free' USING ERRCODE = '${NO_SPARE_SQLSTATE}';
  END $cp$`;
  const opening = [
    claim,
    input.markSql,
    // The rename is when the files reached this tenant.
    `UPDATE ${quoteSchema(target.schema)}.${ledgerTableOf(target)} SET applied_at = now()`,
    `SELECT current_setting('cp.spare') AS spare`,
    describeSchemaSql(target.schema, ledgerTableOf(target)),
  ].join(';\n');
  try {
    await withTargetTransaction(
      input.pool,
      { schema: target.schema, lockKey: target.lockKey },
      input.lockTimeoutMs,
      async (_client, tx) => {
        const made = fingerprintFromResults(target.schema, tx.opening);
        if (made.hash !== input.expected.hash) {
          const spare = (tx.opening[3]?.rows[0] as { spare?: string } | undefined)?.spare ?? '?';
          throw new SpareMismatchError(spare);
        }
      },
      { opening },
    );
  } catch (error) {
    if ((error as { code?: unknown }).code === NO_SPARE_SQLSTATE) return null;
    throw error;
  }
  return {
    fromVersion: null,
    toVersion: catalog.latest,
    steps: catalog.files.map((file) => ({ version: file.version, name: file.name, executionMs: 0 })),
  };
}
