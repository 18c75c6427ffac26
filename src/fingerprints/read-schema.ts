/**
 * Reads a schema's structure from the system catalogs in one round trip. The statement runs with
 * the shared extensions schema alone as its search_path, so the catalog's own deparsers
 * (`format_type`, `pg_get_constraintdef`, `pg_get_viewdef`, `pg_get_expr`) name extension types
 * bare and qualify the schema's own objects, which `normaliseDescription` then unqualifies. The
 * search_path is the same for every schema: a prepared statement's plan is only kept while it is.
 */
import pg from 'pg';
import type { QueryResult } from 'pg';
import {
  EXTENSIONS_SCHEMA,
  LEDGER_TABLE,
  ledgerTableOf,
  type Queryable,
  type ReadAfterCommit,
} from '../migrations/index.js';
import { fingerprintOf, type SchemaDescription, type SchemaFingerprint } from './schema-description.js';

/**
 * Tables a fingerprint leaves out besides our ledger (the deployment's LEDGER_TABLE): the history
 * tables of the tools adoption reads (Alembic, Flyway), which say what ran, not what is there.
 */
export const HISTORY_TABLES: readonly string[] = ['alembic_version', 'flyway_schema_history'];

/** Reads and fingerprints `schema` (an empty description when it does not exist). */
export async function readSchemaFingerprint(
  queryable: Queryable,
  schema: string,
  ledgerTable: string = LEDGER_TABLE,
): Promise<SchemaFingerprint> {
  if (!('release' in queryable)) {
    // A pool: the statement is prepared per connection, so the read holds one for its two steps.
    const client = await queryable.connect();
    try {
      const fingerprint = await readSchemaFingerprint(client, schema, ledgerTable);
      client.release();
      return fingerprint;
    } catch (error) {
      // Destroyed, not returned: no doubt is left about what it has prepared.
      client.release(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }
  const read = schemaFingerprintRead(schema, ledgerTable);
  const results = (await queryable.query(read.sql(queryable))) as unknown as QueryResult[];
  return read.read(queryable, results);
}

/**
 * The read of `schema`'s fingerprint as statements to send after a move's COMMIT in the same round
 * trip (migrateUp's `readAfterCommit`), with the prepared statement: prepared in the same batch on
 * a connection's first read, and the connection remembered as prepared once the batch succeeded.
 */
export function schemaFingerprintRead(
  schema: string,
  ledgerTable: string = LEDGER_TABLE,
): ReadAfterCommit<SchemaFingerprint> {
  return {
    sql: (client) =>
      (prepared.has(client) ? '' : `PREPARE ${STATEMENT}(name, text[]) AS ${DESCRIBE_SQL};\n`) +
      schemaDescriptionSql(schema, ledgerTable),
    read: (client, results) => {
      prepared.add(client);
      return fingerprintFromResults(schema, results);
    },
  };
}

// The description is one large statement whose planning cost more server CPU than its run (about
// 10 ms a read): it is PREPAREd once per connection and run with a generic plan, which PostgreSQL
// keeps while the search_path stays the same (hence one search_path for every schema).
const STATEMENT = 'fingerprint_describe_schema';
const prepared = new WeakSet<object>();

/**
 * The batch that reads a schema's description with the prepared statement: `SET LOCAL`
 * search_path, jit, plan_cache_mode and the planner's join and scan methods, one EXECUTE returning
 * a JSON document, then every setting but the search_path back to its default (the batch's
 * implicit transaction would revert them anyway; inside an explicit transaction they would
 * otherwise reach the statements after the read: set the search_path again after it).
 *
 * The generic plan is made at the connection's first read and kept while the connection lives,
 * whatever the catalogs grow to. Made while they were small (a fleet registered but not yet
 * migrated), the planner's own choice seq-scanned pg_index, pg_attrdef, pg_constraint and others,
 * so each later read cost O(fleet): 18-28 ms at 1,000 migrated tenants instead of 1.5-2. The
 * statement picks tens of rows out of catalogs of any size by their keys, so the plan is made
 * with index scans and nested loops only, right at every size.
 */
function schemaDescriptionSql(schema: string, ledgerTable: string): string {
  const tables = [ledgerTableOf({ schema, ledgerTable }), ...HISTORY_TABLES];
  const history = `ARRAY[${tables.map((t) => pg.escapeLiteral(t)).join(', ')}]`;
  const settings = PLAN_SETTINGS.map(([name, value]) => `SET LOCAL ${name} = ${value}; `).join('');
  const restore = PLAN_SETTINGS.map(([name]) => `; SET LOCAL ${name} TO DEFAULT`).join('');
  return (
    `SET LOCAL search_path TO ${EXTENSIONS_SCHEMA}; ${settings}` +
    `EXECUTE ${STATEMENT}(${pg.escapeLiteral(schema)}, ${history})${restore}`
  );
}

// JIT would compile the plan for longer than it runs (seconds, on a big fleet's catalogs); the
// others keep the generic plan on the catalogs' indexes (see schemaDescriptionSql).
const PLAN_SETTINGS: readonly (readonly [string, string])[] = [
  ['jit', 'off'],
  ['plan_cache_mode', 'force_generic_plan'],
  ['enable_seqscan', 'off'],
  ['enable_hashjoin', 'off'],
  ['enable_mergejoin', 'off'],
];

/**
 * The statements of a read to send inside a batch of simple-protocol statements (e.g. the opening
 * of a tenant transaction), without the prepared statement: `SET LOCAL` search_path and jit (they
 * last until the surrounding transaction ends: set the search_path again after it if more
 * statements follow), then one SELECT returning the JSON document `fingerprintFromResults` reads.
 */
export function describeSchemaSql(schema: string, ledgerTable: string = LEDGER_TABLE): string {
  const tables = [ledgerTableOf({ schema, ledgerTable }), ...HISTORY_TABLES];
  const history = `ARRAY[${tables.map((t) => pg.escapeLiteral(t)).join(', ')}]::text[]`;
  // Functions, not strings, as replacements: a `$` in them must stay as it is.
  const select = DESCRIBE_SQL.replaceAll('$1::name', () => `${pg.escapeLiteral(schema)}::name`).replaceAll(
    '$2::text[]',
    () => history,
  );
  return `SET LOCAL search_path TO ${EXTENSIONS_SCHEMA}; SET LOCAL jit = off; ${select}`;
}

/**
 * The fingerprint of `schema` from the results of a batch with a read in it (`describeSchemaSql`
 * last, or `schemaFingerprintRead`'s statements): the last result that holds a description.
 */
export function fingerprintFromResults(
  schema: string,
  results: readonly { readonly rows: readonly unknown[] }[],
): SchemaFingerprint {
  const described = results.findLast((result) => {
    const row = result.rows[0] as { description?: unknown } | undefined;
    return row?.description !== undefined;
  });
  const row = (described?.rows[0] ?? {}) as { description?: SchemaDescription };
  if (!row.description) throw new Error(`no schema description was returned for ${schema}`);
  return fingerprintOf(schema, row.description);
}

// Objects that belong to an extension are described by the extension's name, not one by one.
const NOT_EXTENSION_MEMBER = (catalog: string, oid: string): string =>
  `NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = '${catalog}'::regclass AND m.objid = ${oid} AND m.deptype = 'e')`;

// The catalogs have no index on an object's namespace (pg_class.relnamespace, pg_proc.pronamespace,
// pg_type.typnamespace), so filtering on it scans every tenant's objects: a fleet of N schemas made
// each read O(N). Every relation (but indexes, TOAST and composite types' rows), function and type
// of a schema depends on the schema in pg_depend, whose index on the referenced object finds them
// directly; indexes come from their tables. The planner then sees tens of rows, not thousands.
const DESCRIBE_SQL = `
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1::name),
owned AS (
  SELECT d.classid, d.objid FROM pg_depend d
  WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = (SELECT oid FROM ns) AND d.deptype = 'n'
),
tbl AS (
  SELECT c.oid, c.relname, c.relkind FROM owned o JOIN pg_class c ON c.oid = o.objid
  WHERE o.classid = 'pg_class'::regclass AND c.relnamespace = (SELECT oid FROM ns)
    AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}
),
rel AS (
  SELECT oid, relname, relkind FROM tbl
  UNION ALL
  SELECT i.oid, i.relname, i.relkind FROM tbl JOIN pg_index x ON x.indrelid = tbl.oid
    JOIN pg_class i ON i.oid = x.indexrelid
  WHERE i.relnamespace = (SELECT oid FROM ns) AND ${NOT_EXTENSION_MEMBER('pg_class', 'i.oid')}
),
fn AS (
  SELECT p.oid FROM owned o JOIN pg_proc p ON p.oid = o.objid
  WHERE o.classid = 'pg_proc'::regclass AND p.pronamespace = (SELECT oid FROM ns)
),
typ AS (
  SELECT y.oid FROM owned o JOIN pg_type y ON y.oid = o.objid
  WHERE o.classid = 'pg_type'::regclass AND y.typnamespace = (SELECT oid FROM ns)
)
SELECT json_build_object(
  'tables', (SELECT coalesce(json_agg(json_build_object(
      'name', t.relname,
      'columns', (SELECT coalesce(json_agg(json_build_object(
          'name', a.attname,
          'type', format_type(a.atttypid, a.atttypmod),
          'notNull', a.attnotnull,
          'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
          'identity', a.attidentity::text,
          'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END)), '[]')
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'constraints', (SELECT coalesce(json_agg(json_build_object(
          'name', k.conname, 'definition', pg_get_constraintdef(k.oid))), '[]')
        FROM pg_constraint k WHERE k.conrelid = t.oid))), '[]')
    FROM rel t WHERE t.relkind IN ('r', 'p', 'f') AND t.relname <> ALL ($2::text[])),
  'indexes', (SELECT coalesce(json_agg(json_build_object('name', i.relname, 'definition', pg_get_indexdef(i.oid))), '[]')
    FROM rel i JOIN pg_index x ON x.indexrelid = i.oid JOIN tbl owner ON owner.oid = x.indrelid
    WHERE owner.relname <> ALL ($2::text[])),
  'sequences', (SELECT coalesce(json_agg(json_build_object('name', s.relname, 'definition',
      concat_ws(' ', format_type(q.seqtypid, NULL), 'START', q.seqstart, 'INCREMENT', q.seqincrement,
        'MINVALUE', q.seqmin, 'MAXVALUE', q.seqmax, 'CACHE', q.seqcache, CASE WHEN q.seqcycle THEN 'CYCLE' END))), '[]')
    FROM rel s JOIN pg_sequence q ON q.seqrelid = s.oid),
  'views', (SELECT coalesce(json_agg(json_build_object('name', v.relname, 'definition',
      CASE v.relkind WHEN 'm' THEN 'MATERIALIZED ' ELSE '' END || pg_get_viewdef(v.oid))), '[]')
    FROM rel v WHERE v.relkind IN ('v', 'm')),
  'functions', (SELECT coalesce(json_agg(json_build_object(
      'name', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
      'definition', pg_get_functiondef(p.oid))), '[]')
    FROM pg_proc p WHERE p.oid IN (SELECT oid FROM fn) AND p.prokind IN ('f', 'p')
      AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')}),
  'triggers', (SELECT coalesce(json_agg(json_build_object('name', c.relname || '.' || g.tgname, 'definition', pg_get_triggerdef(g.oid))), '[]')
    FROM pg_trigger g JOIN rel c ON c.oid = g.tgrelid WHERE NOT g.tgisinternal),
  'types', (SELECT coalesce(json_agg(json_build_object('name', y.typname, 'definition',
      CASE y.typtype
        WHEN 'e' THEN 'ENUM (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
          FROM pg_enum e WHERE e.enumtypid = y.oid) || ')'
        WHEN 'c' THEN 'COMPOSITE (' || (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
          FROM pg_attribute a WHERE a.attrelid = y.typrelid AND a.attnum > 0 AND NOT a.attisdropped) || ')'
        ELSE 'DOMAIN ' || format_type(y.typbasetype, y.typtypmod) || CASE WHEN y.typnotnull THEN ' NOT NULL' ELSE '' END
          || coalesce((SELECT ' ' || string_agg(pg_get_constraintdef(k.oid), ' ' ORDER BY k.conname)
            FROM pg_constraint k WHERE k.contypid = y.oid), '')
      END)), '[]')
    FROM pg_type y WHERE y.oid IN (SELECT oid FROM typ)
      AND (y.typtype IN ('e', 'd') OR (y.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = y.typrelid AND r.relkind = 'c')))
      AND ${NOT_EXTENSION_MEMBER('pg_type', 'y.oid')}),
  'extensions', (SELECT coalesce(json_agg(DISTINCT e.extname), '[]')
    FROM (SELECT 'pg_class'::regclass::oid AS classid, oid AS objid FROM rel
          UNION ALL SELECT 'pg_attrdef'::regclass::oid, d.oid FROM pg_attrdef d JOIN rel ON rel.oid = d.adrelid
          UNION ALL SELECT 'pg_proc'::regclass::oid, oid FROM fn
          UNION ALL SELECT 'pg_type'::regclass::oid, oid FROM typ) o
    -- From the schema's objects to what they use, never the other way: OFFSET 0 keeps the planner
    -- from starting at an extension's members, which every tenant using it depends on.
    CROSS JOIN LATERAL (
      SELECT x.extname FROM pg_depend dep
      JOIN pg_depend m ON m.classid = dep.refclassid AND m.objid = dep.refobjid AND m.deptype = 'e'
        AND m.refclassid = 'pg_extension'::regclass
      JOIN pg_extension x ON x.oid = m.refobjid
      WHERE dep.classid = o.classid AND dep.objid = o.objid OFFSET 0) e)
) AS description`;
