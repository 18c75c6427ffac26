/**
 * A schema's structure as read from the system catalogs, normalised so that two schemas built the
 * same way describe equal whatever their names, and its SHA-256: the schema's fingerprint. Pure.
 */
import { createHash } from 'node:crypto';

/** One column, as the catalog states it; `type` carries its modifiers ("character varying(50)"). */
export interface ColumnDescription {
  readonly name: string;
  readonly type: string;
  readonly notNull: boolean;
  readonly default: string | null;
  /** '' (none), 'a' (ALWAYS) or 'd' (BY DEFAULT). */
  readonly identity: string;
  /** The expression of a stored generated column, or null. */
  readonly generated: string | null;
}

/** A named object with its definition (constraint, index, view, function, trigger, sequence, type). */
export interface DefinedObject {
  readonly name: string;
  readonly definition: string;
}

/** A table with its columns (by name) and its constraints (by name). */
export interface TableDescription {
  readonly name: string;
  readonly columns: readonly ColumnDescription[];
  readonly constraints: readonly DefinedObject[];
}

/** Everything a fingerprint covers, each list sorted by name. */
export interface SchemaDescription {
  readonly tables: readonly TableDescription[];
  readonly indexes: readonly DefinedObject[];
  readonly sequences: readonly DefinedObject[];
  readonly views: readonly DefinedObject[];
  readonly functions: readonly DefinedObject[];
  readonly triggers: readonly DefinedObject[];
  readonly types: readonly DefinedObject[];
  readonly extensions: readonly string[];
}

/** A description and its hash. */
export interface SchemaFingerprint {
  readonly hash: string;
  readonly description: SchemaDescription;
}

/**
 * Normalises a raw description read from `schema`: every `schema.` qualifier is removed from the
 * definitions (the catalog still qualifies index, trigger and function definitions whatever the
 * search_path), and every list is sorted, so that the order objects were created in does not count.
 * Columns are compared by name, not position: a column added in another order is the same structure.
 */
export function normaliseDescription(schema: string, raw: SchemaDescription): SchemaDescription {
  const strip = schemaStripper(schema);
  const defined = (objects: readonly DefinedObject[]): DefinedObject[] =>
    sortByName(objects.map((object) => ({ name: object.name, definition: strip(object.definition) })));
  return {
    tables: sortByName(
      raw.tables.map((table) => ({
        name: table.name,
        columns: sortByName(
          table.columns.map((column) => ({
            name: column.name,
            type: strip(column.type),
            notNull: column.notNull,
            default: column.default === null ? null : strip(column.default),
            identity: column.identity,
            generated: column.generated === null ? null : strip(column.generated),
          })),
        ),
        constraints: defined(table.constraints),
      })),
    ),
    indexes: defined(raw.indexes),
    sequences: defined(raw.sequences),
    views: defined(raw.views),
    functions: defined(raw.functions),
    triggers: defined(raw.triggers),
    types: defined(raw.types),
    extensions: [...new Set(raw.extensions)].sort(),
  };
}

/** The SHA-256 hex of a normalised description's canonical JSON. */
export function hashDescription(description: SchemaDescription): string {
  return createHash('sha256').update(canonicalDescriptionJson(description)).digest('hex');
}

/**
 * `canonicalJson` of a normalised description, by the engine's own JSON.stringify: a key list
 * emits every object's keys in the list's (sorted) order, the same bytes as sorting each object's
 * keys by hand, several times faster (every target of a fleet run hashes one). The list holds
 * every key a description has at any depth; normaliseDescription builds no other.
 */
export function canonicalDescriptionJson(description: SchemaDescription): string {
  return JSON.stringify(description, DESCRIPTION_KEYS);
}

// Every key of a description and of the objects in it, sorted as canonicalJson sorts keys.
const DESCRIPTION_KEYS: string[] = [
  ...new Set([
    ...Object.keys({
      tables: true,
      indexes: true,
      sequences: true,
      views: true,
      functions: true,
      triggers: true,
      types: true,
      extensions: true,
    } satisfies Record<keyof SchemaDescription, true>),
    ...Object.keys({ name: true, columns: true, constraints: true } satisfies Record<
      keyof TableDescription,
      true
    >),
    ...Object.keys({
      name: true,
      type: true,
      notNull: true,
      default: true,
      identity: true,
      generated: true,
    } satisfies Record<keyof ColumnDescription, true>),
    ...Object.keys({ name: true, definition: true } satisfies Record<keyof DefinedObject, true>),
  ]),
].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Normalises and hashes in one step. */
export function fingerprintOf(schema: string, raw: SchemaDescription): SchemaFingerprint {
  const description = normaliseDescription(schema, raw);
  return { hash: hashDescription(description), description };
}

/** JSON with object keys sorted, so equal descriptions give equal bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

// A qualifier is the schema's name, bare or double-quoted, followed by a dot, and not the tail of a
// longer identifier (so stripping "tenant_a." leaves "xtenant_a.b" and "tenant_ab.c" alone).
function schemaStripper(schema: string): (text: string) => string {
  const escaped = schema.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const qualifier = new RegExp(`(?<![A-Za-z0-9_$"])(?:"${escaped}"|${escaped})\\.(?=[A-Za-z_"])`, 'g');
  return (text) => text.replace(qualifier, '');
}

function sortByName<T extends { readonly name: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
