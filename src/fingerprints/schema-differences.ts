/**
 * The differences between an expected and an actual schema description, as a person reads them:
 * `COLUMN_TYPE users.tenant_id expected "character varying(50)" actual "integer"`. Pure.
 */
import type {
  ColumnDescription,
  DefinedObject,
  SchemaDescription,
  TableDescription,
} from './schema-description.js';

/** One difference: what kind, which object, and the two sides (null when the object is absent). */
export interface SchemaDifference {
  readonly kind: string;
  readonly object: string;
  readonly expected: string | null;
  readonly actual: string | null;
}

/** How many differences are kept on a tenant database (the rest are counted in the last one). */
export const MAX_STORED_DIFFERENCES = 50;

/** Every difference, tables first, then each object category; empty when the two are equal. */
export function diffDescriptions(expected: SchemaDescription, actual: SchemaDescription): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const expectedTables = byName(expected.tables);
  const actualTables = byName(actual.tables);
  for (const [name, table] of expectedTables) {
    const other = actualTables.get(name);
    if (!other) differences.push({ kind: 'TABLE_MISSING', object: name, expected: name, actual: null });
    else differences.push(...diffTables(table, other));
  }
  for (const name of actualTables.keys()) {
    if (!expectedTables.has(name))
      differences.push({ kind: 'TABLE_EXTRA', object: name, expected: null, actual: name });
  }
  differences.push(
    ...diffDefined('INDEX', expected.indexes, actual.indexes),
    ...diffDefined('SEQUENCE', expected.sequences, actual.sequences),
    ...diffDefined('VIEW', expected.views, actual.views),
    ...diffDefined('FUNCTION', expected.functions, actual.functions),
    ...diffDefined('TRIGGER', expected.triggers, actual.triggers),
    ...diffDefined('TYPE', expected.types, actual.types),
    ...diffDefined(
      'EXTENSION',
      expected.extensions.map((name) => ({ name, definition: name })),
      actual.extensions.map((name) => ({ name, definition: name })),
    ),
  );
  return differences;
}

/** One line per difference: `KIND object expected "…" actual "…"`. */
export function formatDifference(difference: SchemaDifference): string {
  const sides = [
    difference.expected !== null && !difference.kind.endsWith('_MISSING')
      ? `expected ${JSON.stringify(difference.expected)}`
      : '',
    difference.actual !== null && !difference.kind.endsWith('_EXTRA')
      ? `actual ${JSON.stringify(difference.actual)}`
      : '',
  ].filter(Boolean);
  return [difference.kind, difference.object, ...sides].join(' ');
}

/** The first `limit` differences, with a final `MORE` entry counting the ones left out. */
export function capDifferences(
  differences: readonly SchemaDifference[],
  limit = MAX_STORED_DIFFERENCES,
): SchemaDifference[] {
  if (differences.length <= limit) return [...differences];
  const left = differences.length - (limit - 1);
  return [
    ...differences.slice(0, limit - 1),
    { kind: 'MORE', object: `${left} more differences`, expected: null, actual: null },
  ];
}

const COLUMN_FIELDS = [
  ['type', 'COLUMN_TYPE'],
  ['notNull', 'COLUMN_NULLABLE'],
  ['default', 'COLUMN_DEFAULT'],
  ['identity', 'COLUMN_IDENTITY'],
  ['generated', 'COLUMN_GENERATED'],
] as const satisfies readonly (readonly [keyof ColumnDescription, string])[];

function diffTables(expected: TableDescription, actual: TableDescription): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const actualColumns = byName(actual.columns);
  const expectedColumns = byName(expected.columns);
  for (const [name, column] of expectedColumns) {
    const object = `${expected.name}.${name}`;
    const other = actualColumns.get(name);
    if (!other) {
      differences.push({ kind: 'COLUMN_MISSING', object, expected: column.type, actual: null });
      continue;
    }
    for (const [field, kind] of COLUMN_FIELDS) {
      if (column[field] !== other[field]) {
        differences.push({
          kind,
          object,
          expected: show(column[field], field),
          actual: show(other[field], field),
        });
      }
    }
  }
  for (const [name, column] of actualColumns) {
    if (!expectedColumns.has(name)) {
      differences.push({
        kind: 'COLUMN_EXTRA',
        object: `${expected.name}.${name}`,
        expected: null,
        actual: column.type,
      });
    }
  }
  differences.push(
    ...diffDefined('CONSTRAINT', expected.constraints, actual.constraints).map((difference) => ({
      ...difference,
      object: `${expected.name}.${difference.object}`,
    })),
  );
  return differences;
}

function diffDefined(
  category: string,
  expected: readonly DefinedObject[],
  actual: readonly DefinedObject[],
): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const actualByName = byName(actual);
  const expectedByName = byName(expected);
  for (const [name, object] of expectedByName) {
    const other = actualByName.get(name);
    if (!other)
      differences.push({
        kind: `${category}_MISSING`,
        object: name,
        expected: object.definition,
        actual: null,
      });
    else if (other.definition !== object.definition) {
      differences.push({
        kind: `${category}_DEFINITION`,
        object: name,
        expected: object.definition,
        actual: other.definition,
      });
    }
  }
  for (const [name, object] of actualByName) {
    if (!expectedByName.has(name))
      differences.push({
        kind: `${category}_EXTRA`,
        object: name,
        expected: null,
        actual: object.definition,
      });
  }
  return differences;
}

function show(value: string | boolean | null, field: keyof ColumnDescription): string | null {
  if (field === 'notNull') return value ? 'NOT NULL' : 'NULL';
  if (field === 'identity') return value === 'a' ? 'ALWAYS' : value === 'd' ? 'BY DEFAULT' : null;
  return value === null ? null : String(value);
}

function byName<T extends { readonly name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((item) => [item.name, item]));
}
