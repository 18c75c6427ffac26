import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../../src');

// Every relative import of a file, type-only ones and import('…') types included.
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const patterns = [/\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g, /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g];
  return patterns.flatMap((pattern) =>
    [...text.matchAll(pattern)].map((m) => path.relative(SRC, path.resolve(path.dirname(file), m[1]!))),
  );
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(dir, name));
}

describe('the direction of imports around the run machine', () => {
  it('keeps runs/ free of queue/ and tenants/, type-only imports included', () => {
    const offending = filesUnder(path.join(SRC, 'runs')).flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith('queue/') || target.startsWith('tenants/'))
        .map((target) => `${path.relative(SRC, file)} -> ${target}`),
    );
    expect(offending).toEqual([]);
  });
});
