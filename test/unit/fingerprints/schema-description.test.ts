import { describe, expect, it } from 'vitest';
import {
  canonicalDescriptionJson,
  canonicalJson,
  fingerprintOf,
  type SchemaDescription,
} from '../../../src/fingerprints/schema-description.js';
import {
  capDifferences,
  diffDescriptions,
  formatDifference,
} from '../../../src/fingerprints/schema-differences.js';

const empty: SchemaDescription = {
  tables: [],
  indexes: [],
  sequences: [],
  views: [],
  functions: [],
  triggers: [],
  types: [],
  extensions: [],
};

function withIndex(definition: string, extra: Partial<SchemaDescription> = {}): SchemaDescription {
  return { ...empty, indexes: [{ name: 'idx', definition }], ...extra };
}

describe('fingerprint normalisation', () => {
  it('removes the schema qualifier, bare or quoted, and nothing else', () => {
    const a = fingerprintOf(
      'tenant_a',
      withIndex('CREATE INDEX idx ON tenant_a.t USING btree (x) -- "tenant_a".y'),
    );
    const b = fingerprintOf(
      'tenant_bb',
      withIndex('CREATE INDEX idx ON "tenant_bb".t USING btree (x) -- tenant_bb.y'),
    );
    expect(a.description.indexes[0]?.definition).toBe('CREATE INDEX idx ON t USING btree (x) -- y');
    expect(b.hash).toBe(a.hash);
    const longer = fingerprintOf('tenant_a', withIndex('ON tenant_ab.t, xtenant_a.t'));
    expect(longer.description.indexes[0]?.definition).toBe('ON tenant_ab.t, xtenant_a.t');
  });

  it('does not depend on the order objects are listed in', () => {
    const one = fingerprintOf('s', {
      ...empty,
      extensions: ['pgcrypto', 'citext'],
      types: [
        { name: 'b', definition: '1' },
        { name: 'a', definition: '2' },
      ],
    });
    const two = fingerprintOf('s', {
      ...empty,
      extensions: ['citext', 'pgcrypto'],
      types: [
        { name: 'a', definition: '2' },
        { name: 'b', definition: '1' },
      ],
    });
    expect(two.hash).toBe(one.hash);
  });
});

describe('schema differences', () => {
  it('reads like the issue says', () => {
    const column = {
      name: 'tenant_id',
      type: 'character varying(50)',
      notNull: true,
      default: null,
      identity: '',
      generated: null,
    };
    const expected: SchemaDescription = {
      ...empty,
      tables: [{ name: 'users', columns: [column], constraints: [] }],
      indexes: [{ name: 'idx_tasks_status', definition: 'CREATE INDEX idx_tasks_status ON tasks (status)' }],
    };
    const actual: SchemaDescription = {
      ...empty,
      tables: [
        { name: 'legacy_notes', columns: [], constraints: [] },
        { name: 'users', columns: [{ ...column, type: 'integer', notNull: false }], constraints: [] },
      ],
    };
    expect(diffDescriptions(expected, actual).map(formatDifference)).toEqual([
      'COLUMN_TYPE users.tenant_id expected "character varying(50)" actual "integer"',
      'COLUMN_NULLABLE users.tenant_id expected "NOT NULL" actual "NULL"',
      'TABLE_EXTRA legacy_notes',
      'INDEX_MISSING idx_tasks_status',
    ]);
    expect(diffDescriptions(expected, expected)).toEqual([]);
  });

  it('caps a long list with a count of the rest', () => {
    const many = Array.from({ length: 60 }, (_, i) => ({
      kind: 'TABLE_EXTRA',
      object: `t${i}`,
      expected: null,
      actual: `t${i}`,
    }));
    const capped = capDifferences(many, 50);
    expect(capped).toHaveLength(50);
    expect(capped.at(-1)).toEqual({
      kind: 'MORE',
      object: '11 more differences',
      expected: null,
      actual: null,
    });
  });
});

describe('canonical JSON of a description', () => {
  it("is the same bytes as sorting every object's keys by hand, for every kind of object and value", () => {
    const { description } = fingerprintOf('tenant_x', {
      tables: [
        {
          name: 'users',
          columns: [
            { name: 'id', type: 'bigint', notNull: true, default: null, identity: 'a', generated: null },
            {
              name: 'name_key',
              type: 'text',
              notNull: false,
              default: null,
              identity: '',
              generated: 'lower((email)::text)',
            },
            {
              name: 'note',
              type: 'character varying(50)',
              notNull: false,
              default: `'a "quoted" \\ é'::character varying`,
              identity: '',
              generated: null,
            },
          ],
          constraints: [{ name: 'users_pkey', definition: 'PRIMARY KEY (id)' }],
        },
      ],
      indexes: [{ name: 'idx', definition: 'CREATE INDEX idx ON tenant_x.users USING btree (note)' }],
      sequences: [{ name: 'invoice_numbers', definition: 'bigint START 1000 INCREMENT 5' }],
      views: [{ name: 'v', definition: ' SELECT 1;' }],
      functions: [{ name: 'f()', definition: 'CREATE FUNCTION f() ... $$\n$$' }],
      triggers: [{ name: 'users.t', definition: 'CREATE TRIGGER t ...' }],
      types: [{ name: 'user_role', definition: "ENUM ('viewer', 'editor')" }],
      extensions: ['pgcrypto', 'citext'],
    });
    expect(canonicalDescriptionJson(description)).toBe(canonicalJson(description));
    expect(canonicalDescriptionJson(empty)).toBe(canonicalJson(empty));
  });
});
