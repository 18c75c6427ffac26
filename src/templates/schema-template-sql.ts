/**
 * The SQL of a schema template: what `pg_dump --schema=<scratch>` printed for a scratch schema the
 * catalog was replayed into, reduced to the statements that rebuild its objects and data in
 * another schema. Pure: no I/O, so the reduction is unit-tested against real pg_dump output.
 */
import { quoteSchema } from '../db/pg.js';

/** A schema template's SQL with the scratch schema's name in it, to be replaced per tenant. */
export interface SchemaTemplateSql {
  readonly sql: string;
  /** The scratch schema's name, as it appears (unquoted) in `sql`. */
  readonly placeholder: string;
}

// Every pg_dump object entry opens with this header; what precedes the first is session setup.
const ENTRY_HEADER = /^--\n-- (?:Data for )?Name: (.*); Type: ([A-Z ]+); Schema: ([^;]*); Owner: .*\n--\n/gm;
// Lines of session setup pg_dump writes between entries (before the first table of an access method).
const SESSION_LINES = new Set(["SET default_tablespace = '';", 'SET default_table_access_method = heap;']);
// psql meta-commands that pg_dump 15.14+/16.10+/17.6+ writes around a plain dump.
const META_COMMAND = /^\\(?:un)?restrict\s+\S+$/;
// A scratch schema's name: lowercase, digits and `_`, so pg_dump never quotes it.
const PLAIN_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * Keeps the object and data entries of a plain `pg_dump --schema=<scratch>` of one schema: drops
 * the session setup at the top (it would set `search_path` to '' for the whole session), the
 * schema's own CREATE SCHEMA and COMMENT ON SCHEMA (the provisioner creates and marks the tenant's
 * schema), and psql meta-commands. Every name pg_dump printed is qualified with the scratch schema.
 */
export function schemaTemplateFromDump(dump: string, scratchSchema: string): SchemaTemplateSql {
  if (!PLAIN_NAME.test(scratchSchema)) throw new Error(`scratch schema "${scratchSchema}" needs quoting`);
  const headers = [...dump.matchAll(ENTRY_HEADER)];
  if (headers.length === 0) throw new Error('the dump has no object entries');
  const kept: string[] = [];
  headers.forEach((header, i) => {
    const [, name, type] = header as unknown as [string, string, string, string];
    const start = (header.index ?? 0) + header[0].length;
    const end = headers[i + 1]?.index ?? dump.length;
    if (type === 'SCHEMA' || (type === 'COMMENT' && name === `SCHEMA ${scratchSchema}`)) return;
    const body = dump
      .slice(start, end)
      .split('\n')
      .filter((line) => !SESSION_LINES.has(line) && !META_COMMAND.test(line))
      .join('\n')
      .replace(/\n--\n-- PostgreSQL database dump complete\n--\n/, '\n')
      .trim();
    if (body) kept.push(`-- ${type} ${name}\n${body}`);
  });
  return { sql: kept.join('\n\n'), placeholder: scratchSchema };
}

/** The template's SQL for `schema`: every mention of the scratch schema replaced by its name. */
export function renderSchemaTemplate(template: SchemaTemplateSql, schema: string): string {
  const quoted = quoteSchema(schema);
  // Whole identifiers only: `scratch.accounts`, `'scratch.accounts_id_seq'::regclass`.
  return template.sql.replace(
    new RegExp(`(?<![A-Za-z0-9_$"])${template.placeholder}(?![A-Za-z0-9_$])`, 'g'),
    quoted,
  );
}
