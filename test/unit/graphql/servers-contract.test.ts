/**
 * The servers part of the contract (issue 12): schema.graphql carries it, checked against the
 * vendored copy in contract/parts/ and, when present, against ../shared/contract.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHARED = path.resolve(ROOT, '../shared/contract');
const VENDORED = path.join(ROOT, 'contract');
const PART = 'parts/servers.graphql';

function checkPart(contractDir: string) {
  return spawnSync(
    process.execPath,
    [path.join(contractDir, 'check-part.mjs'), 'schema.graphql', path.join(contractDir, PART)],
    { cwd: ROOT, encoding: 'utf8' },
  );
}

describe('the servers part of the contract', () => {
  it('is in schema.graphql (vendored copy in contract/parts/)', () => {
    const result = checkPart(VENDORED);
    expect(result.stdout + result.stderr).toContain('schema contains the required surface');
    expect(result.status).toBe(0);
  });

  it.skipIf(!existsSync(SHARED))(
    'is in schema.graphql per ../shared/contract, of which contract/ is a copy',
    () => {
      const result = checkPart(SHARED);
      expect(result.stdout + result.stderr).toContain('schema contains the required surface');
      expect(result.status).toBe(0);
      for (const file of ['check-part.mjs', PART]) {
        expect(readFileSync(path.join(VENDORED, file), 'utf8'), file).toBe(
          readFileSync(path.join(SHARED, file), 'utf8'),
        );
      }
    },
  );
});
