import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHARED = path.resolve(ROOT, '../shared/contract');
const VENDORED = path.join(ROOT, 'contract');
const PART = 'parts/drift.graphql';

function checkPart(contractDir: string) {
  return spawnSync(
    process.execPath,
    [path.join(contractDir, 'check-part.mjs'), 'schema.graphql', path.join(contractDir, PART)],
    { cwd: ROOT, encoding: 'utf8' },
  );
}

describe('the drift part of the contract (issue 13)', () => {
  it('is in schema.graphql (vendored copy in contract/parts/)', () => {
    const result = checkPart(VENDORED);
    expect(result.stdout).toContain('schema contains the required surface');
    expect(result.status).toBe(0);
  });

  it.skipIf(!existsSync(SHARED))('matches ../shared/contract, and contract/ is a current copy of it', () => {
    const result = checkPart(SHARED);
    expect(result.status).toBe(0);
    for (const file of ['check-part.mjs', PART]) {
      expect(readFileSync(path.join(VENDORED, file), 'utf8'), file).toBe(
        readFileSync(path.join(SHARED, file), 'utf8'),
      );
    }
  });
});
