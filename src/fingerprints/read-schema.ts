/**
 * Reads a schema's structure from the system catalogs in one round trip. The statement runs with
 * the schema (then the shared extensions schema) as its search_path, so the catalog's own
 * deparsers (`format_type`, `pg_get_constraintdef`, `pg_get_viewdef`, `pg_get_expr`) leave the
 * schema's name out; `normaliseDescription` removes what they qualify regardless.
 */
import pg from 'pg';
import { quoteSchema } from '../db/pg.js';
import { EXTENSIONS_SCHEMA, LEDGER_TABLE, ledgerTableOf, type Queryable } from '../migrations/index.js';
import { fingerprintOf, type SchemaDescription, type SchemaFingerprint } from './schema-description.js';

/**
 * Tables a fingerprint leaves out besides our ledger (the deployment's LEDGER_TABLE): the history
 * tables of the tools adoption reads (Alembic, Flyway), which say what ran, not what is there.
 */
export const HISTORY_TABLES: readonly string[] = ['alembic_version', 'flyway_schema_history'];

/**
 * Reads and fingerprints `schema` (an empty description when it does not exist), leaving out the
 * ledger table `ledgerTable` (a catalog's own table of the default ledger's name is kept when the
 * deployment names its ledger otherwise).
 */
export async function readSchemaFingerprint(
  queryable: Queryable,
  schema: string,
  ledgerTable: string = LEDGER_TABLE,
): Promise<SchemaFingerprint> {
  const results = (await queryable.query(schemaDescriptionSql(schema, ledgerTable))) as unknown as {
    rows: unknown[];
  }[];
  return fingerprintFromResults(schema, results);
}

/**
 * The statements of `readSchemaFingerprint`, to send in a batch of simple-protocol statements:
 * a `SET LOCAL search_path` (reverted when the batch's implicit transaction ends; inside an
 * explicit transaction it lasts until that one ends), then one SELECT returning a JSON document.
 */
export function schemaDescriptionSql(schema: string, ledgerTable: string = LEDGER_TABLE): string {
  const literal = pg.escapeLiteral(schema);
  const history = [ledgerTableOf({ schema, ledgerTable }), ...HISTORY_TABLES];
  return `SET LOCAL search_path TO ${quoteSchema(schema)}, ${EXTENSIONS_SCHEMA}; ${DESCRIBE_SQL.replaceAll(':schema', literal).replaceAll(':history', `ARRAY[${history.map((t) => pg.escapeLiteral(t)).join(', ')}]::text[]`)}`;
}

/** The fingerprint from the results of a batch that ends with `schemaDescriptionSql`. */
export function fingerprintFromResults(
  schema: string,
  results: readonly { rows: unknown[] }[],
): SchemaFingerprint {
  const row = (results.at(-1)?.rows[0] ?? {}) as { description?: SchemaDescription };
  if (!row.description) throw new Error(`no schema description was returned for ${schema}`);
  return fingerprintOf(schema, row.description);
}

// Objects that belong to an extension are described by the extension's name, not one by one.
const NOT_EXTENSION_MEMBER = (catalog: string, oid: string): string =>
  `NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = '${catalog}'::regclass AND m.objid = ${oid} AND m.deptype = 'e')`;

const DESCRIBE_SQL = `
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = :schema),
rel AS (
  SELECT c.oid, c.relname, c.relkind FROM pg_class c
  WHERE c.relnamespace = (SELECT oid FROM ns) AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}
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
    FROM rel t WHERE t.relkind IN ('r', 'p', 'f') AND t.relname <> ALL (:history)),
  'indexes', (SELECT coalesce(json_agg(json_build_object('name', i.relname, 'definition', pg_get_indexdef(i.oid))), '[]')
    FROM rel i JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class owner ON owner.oid = x.indrelid
    WHERE owner.relname <> ALL (:history)),
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
    FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns) AND p.prokind IN ('f', 'p')
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
    FROM pg_type y WHERE y.typnamespace = (SELECT oid FROM ns)
      AND (y.typtype IN ('e', 'd') OR (y.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = y.typrelid AND r.relkind = 'c')))
      AND ${NOT_EXTENSION_MEMBER('pg_type', 'y.oid')}),
  'extensions', (SELECT coalesce(json_agg(DISTINCT x.extname), '[]')
    FROM pg_depend dep
    JOIN pg_depend m ON m.classid = dep.refclassid AND m.objid = dep.refobjid AND m.deptype = 'e'
    JOIN pg_extension x ON x.oid = m.refobjid
    WHERE (dep.classid = 'pg_class'::regclass AND dep.objid IN (SELECT oid FROM rel))
       OR (dep.classid = 'pg_attrdef'::regclass AND dep.objid IN (SELECT d.oid FROM pg_attrdef d JOIN rel ON rel.oid = d.adrelid))
       OR (dep.classid = 'pg_proc'::regclass AND dep.objid IN (SELECT p.oid FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns)))
       OR (dep.classid = 'pg_type'::regclass AND dep.objid IN (SELECT y.oid FROM pg_type y WHERE y.typnamespace = (SELECT oid FROM ns))))
) AS description`;
