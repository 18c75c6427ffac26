import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../../../src/graphql/print-schema.js';
import { buildSchema } from '../../../src/graphql/schema.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHARED = path.resolve(ROOT, '../shared/contract');
const VENDORED = path.join(ROOT, 'contract');

function runCheck(contractDir: string) {
  return spawnSync(process.execPath, [path.join(contractDir, 'check.mjs'), 'schema.graphql'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
}

describe('the GraphQL schema', () => {
  it('equals the committed schema.graphql (run `npm run schema:print` after a change)', () => {
    expect(printedSchema()).toBe(readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8'));
  });

  it('contains the required surface of the contract (vendored copy in contract/)', () => {
    const result = runCheck(VENDORED);
    expect(result.stdout).toContain('schema contains the required surface');
    expect(result.status).toBe(0);
  });

  it.skipIf(!existsSync(SHARED))(
    'contains the required surface of ../shared/contract, and contract/ is a current copy of it',
    () => {
      const result = runCheck(SHARED);
      expect(result.stdout).toContain('schema contains the required surface');
      expect(result.status).toBe(0);
      for (const file of ['check.mjs', 'required.graphql']) {
        expect(readFileSync(path.join(VENDORED, file), 'utf8'), file).toBe(
          readFileSync(path.join(SHARED, file), 'utf8'),
        );
      }
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
