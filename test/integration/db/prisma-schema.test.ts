/**
 * Proves prisma/schema.prisma and the migrated control-plane database agree: every model is a
 * table, every scalar field a column of the matching type and nullability, every enum a
 * Postgres enum with the same labels. The schema file is parsed here and cross-checked with
 * the generated client's runtime data model, so the parser cannot silently miss a field.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/database.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SCHEMA = 'control_plane';

interface PrismaField {
  readonly name: string;
  readonly column: string;
  readonly type: string;
  readonly optional: boolean;
  readonly list: boolean;
  readonly nativeType: string | null;
  readonly nativeArgs: string | null;
}

interface PrismaModel {
  readonly name: string;
  readonly table: string;
  readonly fields: PrismaField[];
}

interface PrismaEnum {
  readonly name: string;
  readonly dbName: string;
  readonly labels: string[];
}

const prisma = parsePrismaSchema(readFileSync(path.join(ROOT, 'prisma/schema.prisma'), 'utf8'));
const enumNames = new Map(prisma.enums.map((e) => [e.name, e]));

describe('prisma/schema.prisma against the migrated control plane', () => {
  const db = useTestDatabase({ controlPlane: true });

  it('parses the same models and columns as the generated client', () => {
    const runtime = readRuntimeDataModel();
    expect(prisma.models.map((m) => m.name).sort()).toEqual(Object.keys(runtime.models).sort());
    for (const model of prisma.models) {
      const generated = runtime.models[model.name]!;
      expect(generated.dbName ?? model.name, model.name).toBe(model.table);
      const scalar = generated.fields
        .filter((f) => f.kind !== 'object')
        .map((f) => [f.name, f.dbName ?? f.name, f.type])
        .sort();
      const parsed = model.fields.map((f) => [f.name, f.column, f.type]).sort();
      expect(parsed, model.name).toEqual(scalar);
    }
  });

  it('maps every enum to a Postgres enum with the same labels in order', async () => {
    const result = await db.pool.query<{ typname: string; labels: string[] }>(
      `SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] AS labels
         FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = $1 GROUP BY t.typname`,
      [SCHEMA],
    );
    const actual = new Map(result.rows.map((r) => [r.typname, r.labels]));
    expect(prisma.enums.length).toBeGreaterThan(0);
    for (const e of prisma.enums) expect(actual.get(e.dbName), e.name).toEqual(e.labels);
  });

  it.each(prisma.models.map((m) => [m.name, m] as const))(
    'maps model %s to a table with matching columns',
    async (_name, model) => {
      const result = await db.pool.query<{
        column_name: string;
        is_nullable: 'YES' | 'NO';
        data_type: string;
        udt_schema: string;
        udt_name: string;
        character_maximum_length: number | null;
      }>(
        `SELECT column_name, is_nullable, data_type, udt_schema, udt_name, character_maximum_length
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
        [SCHEMA, model.table],
      );
      expect(result.rows.length, `table ${SCHEMA}.${model.table} exists`).toBeGreaterThan(0);
      const columns = new Map(result.rows.map((r) => [r.column_name, r]));
      for (const field of model.fields) {
        const column = columns.get(field.column);
        expect(column, `${model.name}.${field.name} -> column ${field.column}`).toBeDefined();
        expect(
          { type: describeColumn(column!), nullable: column!.is_nullable === 'YES' },
          `${model.name}.${field.name}`,
        ).toEqual({ type: expectedColumnType(field), nullable: field.optional });
      }
    },
  );
});

function describeColumn(column: {
  udt_schema: string;
  udt_name: string;
  character_maximum_length: number | null;
}): string {
  const base = column.udt_schema === SCHEMA ? `enum ${column.udt_name}` : column.udt_name;
  return column.character_maximum_length === null ? base : `${base}(${column.character_maximum_length})`;
}

function expectedColumnType(field: PrismaField): string {
  const enumType = enumNames.get(field.type);
  if (enumType) return `enum ${enumType.dbName}`;
  const element = scalarType(field);
  return field.list ? `_${element}` : element;
}

function scalarType(field: PrismaField): string {
  switch (field.type) {
    case 'String':
      switch (field.nativeType) {
        case null:
        case 'Text':
          return 'text';
        case 'Uuid':
          return 'uuid';
        case 'VarChar':
          return `varchar(${field.nativeArgs})`;
        case 'Char':
          return `bpchar(${field.nativeArgs})`;
        default:
          throw new Error(`unmapped @db.${field.nativeType} on ${field.name}`);
      }
    case 'Int':
      return 'int4';
    case 'BigInt':
      return 'int8';
    case 'Boolean':
      return 'bool';
    case 'DateTime':
      // Prisma's default for DateTime is timestamp(3) without time zone; we store timestamptz.
      return field.nativeType === 'Timestamptz'
        ? 'timestamptz'
        : 'timestamp (Prisma default: add @db.Timestamptz)';
    case 'Json':
      return 'jsonb';
    case 'Bytes':
      return 'bytea';
    default:
      throw new Error(`unmapped Prisma type ${field.type} on ${field.name}`);
  }
}

function parsePrismaSchema(text: string): { models: PrismaModel[]; enums: PrismaEnum[] } {
  const models: PrismaModel[] = [];
  const enums: PrismaEnum[] = [];
  const blocks = text.matchAll(/^(model|enum)\s+(\w+)\s*\{([\s\S]*?)^\}/gm);
  const parsedBlocks = [...blocks];
  const allModels = new Set(parsedBlocks.filter((b) => b[1] === 'model').map((b) => b[2]));
  for (const [, kind, name = '', body = ''] of parsedBlocks) {
    const lines = body
      .split('\n')
      .map((line) => line.replace(/\/\/.*$/, '').trim())
      .filter(Boolean);
    const mapped = lines.map((line) => /^@@map\("([^"]+)"\)/.exec(line)?.[1]).find(Boolean);
    const members = lines.filter((line) => !line.startsWith('@@'));
    if (kind === 'enum') {
      const labels = members.map((line) => /@map\("([^"]+)"\)/.exec(line)?.[1] ?? line.split(/\s+/)[0]!);
      enums.push({ name, dbName: mapped ?? name, labels });
      continue;
    }
    const fields: PrismaField[] = [];
    for (const line of members) {
      const match = /^(\w+)\s+(\w+)(\[\])?(\?)?(.*)$/.exec(line);
      if (!match) throw new Error(`cannot parse field line in model ${name}: ${line}`);
      const [, fieldName = '', type = '', list, optional, attributes = ''] = match;
      if (allModels.has(type)) continue; // relation field: no column
      const native = /@db\.(\w+)(?:\(([^)]*)\))?/.exec(attributes);
      fields.push({
        name: fieldName,
        column: /@map\("([^"]+)"\)/.exec(attributes)?.[1] ?? fieldName,
        type,
        optional: optional === '?',
        list: list === '[]',
        nativeType: native?.[1] ?? null,
        nativeArgs: native?.[2] ?? null,
      });
    }
    models.push({ name, table: mapped ?? name, fields });
  }
  return { models, enums };
}

interface RuntimeDataModel {
  models: Record<
    string,
    { dbName: string | null; fields: { name: string; kind: string; type: string; dbName?: string | null }[] }
  >;
}

function readRuntimeDataModel(): RuntimeDataModel {
  const source = readFileSync(path.join(ROOT, 'src/generated/prisma/internal/class.ts'), 'utf8');
  const match = /config\.runtimeDataModel = JSON\.parse\(("(?:[^"\\]|\\.)*")\)/.exec(source);
  if (!match?.[1])
    throw new Error('runtimeDataModel not found in the generated client: run npm run prisma:generate');
  return JSON.parse(JSON.parse(match[1]) as string) as RuntimeDataModel;
}
