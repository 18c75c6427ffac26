/**
 * Fails when relative imports under src/ form a cycle (STYLE.md: imports flow one way).
 * Dependency-free on purpose: the usual ESLint plugin pulls native resolver bindings that are
 * partly missing from the registry, which breaks `npm ci`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(process.argv[2] ?? 'src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g;

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return entry === 'generated' ? [] : listFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    // `import type` edges vanish at run time but still couple modules, so they count.
    const target = resolve(dirname(file), (match[1] as string).replace(/\.js$/, '.ts'));
    out.push(target);
  }
  return out;
}

const files = listFiles(ROOT);
const graph = new Map(
  files.map((file) => [file, importsOf(file).filter((target) => files.includes(target))]),
);
const state = new Map<string, 'visiting' | 'done'>();
const cycles: string[][] = [];

function visit(file: string, stack: string[]): void {
  if (state.get(file) === 'done') return;
  if (state.get(file) === 'visiting') {
    cycles.push([...stack.slice(stack.indexOf(file)), file]);
    return;
  }
  state.set(file, 'visiting');
  for (const next of graph.get(file) ?? []) visit(next, [...stack, file]);
  state.set(file, 'done');
}

for (const file of files) visit(file, []);
for (const cycle of cycles)
  console.error(`import cycle: ${cycle.map((f) => relative(process.cwd(), f)).join(' -> ')}`);
if (cycles.length > 0) process.exit(1);
console.log(`no import cycles among ${files.length} files`);
