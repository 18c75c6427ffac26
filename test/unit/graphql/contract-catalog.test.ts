import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHARED = path.resolve(ROOT, '../shared/contract');

describe('the catalog part of the contract (issue 11)', () => {
  it('is implemented by schema.graphql (vendored copy in contract/parts/catalog.graphql)', () => {
    const result = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'contract/check-part.mjs'),
        'schema.graphql',
        path.join(ROOT, 'contract/parts/catalog.graphql'),
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(result.stdout).toContain('schema contains the required surface');
    expect(result.status).toBe(0);
  });

  it.skipIf(!existsSync(path.join(SHARED, 'parts/catalog.graphql')))(
    'is a current copy of ../shared/contract',
    () => {
      for (const file of ['check-part.mjs', 'parts/catalog.graphql']) {
        expect(readFileSync(path.join(ROOT, 'contract', file), 'utf8'), file).toBe(
          readFileSync(path.join(SHARED, file), 'utf8'),
        );
      }
    },
  );
});
