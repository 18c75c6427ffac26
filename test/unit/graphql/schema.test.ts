import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../../../src/graphql/print-schema.js';
import { buildSchema } from '../../../src/graphql/schema.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CHECK = path.resolve(ROOT, '../shared/contract/check.mjs');

describe('the GraphQL schema', () => {
  it('equals the committed schema.graphql (run `npm run schema:print` after a change)', () => {
    expect(printedSchema()).toBe(readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8'));
  });

  it.skipIf(!existsSync(CHECK))(
    'contains the required surface of the contract (../shared/contract absent: skipped)',
    () => {
      const result = spawnSync(process.execPath, [CHECK, 'schema.graphql'], { cwd: ROOT, encoding: 'utf8' });
      expect(result.stdout).toContain('schema contains the required surface');
      expect(result.status).toBe(0);
    },
  );

  it('requires a role on every root field', () => {
    const schema = buildSchema();
    const unguarded: string[] = [];
    for (const type of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]) {
      for (const field of Object.values(type?.getFields() ?? {})) {
        const options = field.extensions?.pothosOptions as
          { authScopes?: Record<string, boolean> } | undefined;
        const scopes = Object.keys(options?.authScopes ?? {});
        if (scopes.length === 0) unguarded.push(`${type?.name}.${field.name}`);
        if (type?.name === 'Mutation' && scopes.includes('viewer'))
          unguarded.push(`${type.name}.${field.name}`);
      }
    }
    expect(unguarded).toEqual([]);
  });
});
