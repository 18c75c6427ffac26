import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHARED = path.resolve(ROOT, '../shared/contract');
const PART = 'parts/backups.graphql';

function checkPart(contractDir: string) {
  return spawnSync(
    process.execPath,
    [path.join(contractDir, 'check-part.mjs'), 'schema.graphql', path.join(contractDir, PART)],
    { cwd: ROOT, encoding: 'utf8' },
  );
}

describe('the backups part of the contract (issue 15)', () => {
  it('is in the schema (vendored copy in contract/)', () => {
    const result = checkPart(path.join(ROOT, 'contract'));
    expect(result.stdout).toContain('schema contains the required surface');
    expect(result.status).toBe(0);
  });

  it.skipIf(!existsSync(path.join(SHARED, PART)))(
    'matches ../shared/contract, of which contract/ is a copy',
    () => {
      const result = checkPart(SHARED);
      expect(result.status).toBe(0);
      for (const file of ['check-part.mjs', PART]) {
        expect(readFileSync(path.join(ROOT, 'contract', file), 'utf8'), file).toBe(
          readFileSync(path.join(SHARED, file), 'utf8'),
        );
      }
    },
  );
});
