/**
 * Public golang-migrate catalogs, used verbatim: they load, and a tenant migrated by the engine
 * has the same structure as a schema given the same files with `psql -f`, in order (and back
 * down where down files exist). The catalogs are not committed (their licences, e.g. AGPL, do
 * not fit this repository): point REAL_CATALOGS at one or more directories (":"-separated), e.g.
 * `git archive HEAD server/migrations` of github.com/ente-io/ente (124 migrations).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Pool } from 'pg';
import { describe, expect, it } from 'vitest';
import { fileNameOf, loadCatalog, migrateDown, migrateUp } from '../../../src/migrations/index.js';
import type { MigrationCatalog } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';

const DIRS = (process.env.REAL_CATALOGS ?? '').split(':').filter((dir) => dir !== '');

describe.skipIf(DIRS.length === 0)('public golang-migrate catalogs', () => {
  const db = useTestDatabase();

  it.each(DIRS.map((dir, i) => [path.basename(dir), dir, i] as const))(
    '%s loads, and the engine builds the structure psql -f builds, up and down',
    async (_name, dir, i) => {
      const catalog = await loadCatalog(dir);
      expect(catalog.files.length).toBeGreaterThan(0);
      const engine = db.tenantTarget(`real_engine_${i}`);
      const reference = `tenant_real_psql_${i}`;
      await migrateUp(db.pool, engine, catalog);
      psqlFiles(db.url, reference, catalog);
      const built = (await structureOf(db.pool, engine.schema)) as { columns: unknown[] };
      expect(built.columns.length).toBeGreaterThan(0);
      expect(built).toEqual(await structureOf(db.pool, reference));

      // Down, one version at a time, as far as the catalog's own down files go with psql: where
      // psql fails on a down file, the engine must fail on the same file and change nothing.
      const files = [...catalog.files].reverse();
      for (const [i, file] of files.entries()) {
        if (!file.reversible) break;
        const below = files[i + 1]?.version ?? '0';
        const psqlError = psqlDown(db.url, reference, catalog, file);
        const engineError = await migrateDown(db.pool, engine, catalog, { toVersion: below }).then(
          () => null,
          (error: unknown) => error,
        );
        if (psqlError !== null) {
          expect(engineError).toMatchObject({ file: fileNameOf(file, 'down') });
          break;
        }
        expect(engineError).toBeNull();
      }
      expect(await structureOf(db.pool, engine.schema)).toEqual(await structureOf(db.pool, reference));
    },
    600_000,
  );
});

/** Runs every up file with `psql -f`, in order, as golang-migrate would: unwrapped. */
function psqlFiles(url: string, schema: string, catalog: MigrationCatalog): void {
  const failed = psql(url, schema, ['-c', `CREATE SCHEMA ${schema}`], true);
  if (failed) throw new Error(failed);
  for (const file of catalog.files) {
    const error = psql(url, schema, ['-f', path.join(catalog.dir, fileNameOf(file, 'up'))], file.transactional);
    if (error) throw new Error(error);
  }
}

/** Runs one down file with `psql -f`; the error text, or null. */
function psqlDown(url: string, schema: string, catalog: MigrationCatalog, file: MigrationCatalog['files'][number]): string | null {
  if ((file.downSql ?? '').trim() === '') return null;
  return psql(url, schema, ['-f', path.join(catalog.dir, fileNameOf(file, 'down'))], file.downTransactional);
}

function psql(url: string, schema: string, args: string[], transactional: boolean): string | null {
  // A transactional file in one transaction, as the engine runs it; the others unwrapped.
  const result = spawnSync('psql', ['-X', '-q', ...(transactional ? ['-1'] : []), '-v', 'ON_ERROR_STOP=1', url, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PGOPTIONS: `-c search_path=${schema} -c client_min_messages=warning` },
  });
  return result.status === 0 ? null : `psql ${args.join(' ')}: ${result.stderr}`;
}

/** Tables, columns, indexes and constraints of `schema`, with the schema's name taken out; the ledger left out. */
async function structureOf(pool: Pool, schema: string): Promise<unknown> {
  const strip = (text: string | null) => (text ?? '').split(`${schema}.`).join('');
  const columns = await pool.query<Record<string, string>>(
    `SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'control_plane_ledger'
      ORDER BY table_name, column_name`,
    [schema],
  );
  const indexes = await pool.query<Record<string, string>>(
    `SELECT tablename, indexname, indexdef FROM pg_indexes
      WHERE schemaname = $1 AND tablename <> 'control_plane_ledger' ORDER BY tablename, indexname`,
    [schema],
  );
  const constraints = await pool.query<Record<string, string>>(
    `SELECT c.conrelid::regclass::text AS relation, c.conname, pg_get_constraintdef(c.oid) AS definition
       FROM pg_constraint c WHERE c.connamespace = to_regnamespace($1)
        AND c.conrelid <> coalesce(to_regclass($1 || '.control_plane_ledger'), 0)
      ORDER BY 1, 2`,
    [schema],
  );
  const types = await pool.query<Record<string, string>>(
    `SELECT t.typname, t.typtype FROM pg_type t WHERE t.typnamespace = to_regnamespace($1)
        AND t.typtype IN ('e', 'd', 'c') AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid) ORDER BY 1`,
    [schema],
  );
  return {
    columns: columns.rows.map((row) => ({ ...row, column_default: strip(row.column_default ?? null) })),
    indexes: indexes.rows.map((row) => ({ ...row, indexdef: strip(row.indexdef ?? null) })),
    constraints: constraints.rows.map((row) => ({ ...row, relation: strip(row.relation ?? null), definition: strip(row.definition ?? null) })),
    types: types.rows,
  };
}
