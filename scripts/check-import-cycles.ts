/**
 * Fails when imports under src/ form a cycle (STYLE.md: imports flow one way), at two levels:
 * between files, and between modules (each top-level directory of src/, like runs/, queue/,
 * tenants/, is one module; a top-level file is a module of its own). Type-only imports count:
 * `import type`, `export type … from` and `import('…')` in a type vanish at run time but still
 * couple modules. Dependency-free on purpose: the usual ESLint plugin pulls native resolver
 * bindings that are partly missing from the registry, which breaks `npm ci`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ROOT = resolve(process.argv[2] ?? 'src');
// `import … from '…'`, `import type … from '…'`, `export … from '…'`, `export type … from '…'`.
const STATIC_IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g;
// `import '…'` for its side effects, and `import('…')` whether in code or in a type.
const BARE_IMPORT = /(?:^|\n)\s*import\s+['"](\.{1,2}\/[^'"]+)['"]/g;
const DYNAMIC_IMPORT = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return entry === 'generated' ? [] : listFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** The files `file` imports, at run time or for types only. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [STATIC_IMPORT, BARE_IMPORT, DYNAMIC_IMPORT].flatMap((pattern) =>
    [...text.matchAll(pattern)].map((match) => match[1] as string),
  );
  return specifiers.map((specifier) => resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
}

/** The module a file belongs to: its top-level directory under ROOT, or the file itself. */
function moduleOf(file: string): string {
  const [first, ...rest] = relative(ROOT, file).split(sep);
  return rest.length > 0 ? `${first}/` : (first as string);
}

/** Every cycle found by a depth-first walk of `graph`, each as the path that closes it. */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[][] = [];
  const visit = (node: string, stack: string[]): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'visiting') {
      cycles.push([...stack.slice(stack.indexOf(node)), node]);
      return;
    }
    state.set(node, 'visiting');
    for (const next of graph.get(node) ?? []) visit(next, [...stack, node]);
    state.set(node, 'done');
  };
  for (const node of graph.keys()) visit(node, []);
  return cycles;
}

const files = listFiles(ROOT);
const known = new Set(files);
const fileGraph = new Map(files.map((file) => [file, importsOf(file).filter((target) => known.has(target))]));

// Module edges, each with one import that makes it, to show where a cycle comes from.
const moduleGraph = new Map<string, string[]>();
const witness = new Map<string, string>();
for (const [file, targets] of fileGraph) {
  const from = moduleOf(file);
  for (const target of targets) {
    const to = moduleOf(target);
    if (from === to) continue;
    const edges = moduleGraph.get(from) ?? [];
    if (!edges.includes(to)) edges.push(to);
    moduleGraph.set(from, edges);
    witness.set(
      `${from}>${to}`,
      `${relative(process.cwd(), file)} imports ${relative(process.cwd(), target)}`,
    );
  }
}

const show = (file: string) => relative(process.cwd(), file);
const fileCycles = findCycles(fileGraph);
for (const cycle of fileCycles) console.error(`import cycle: ${cycle.map(show).join(' -> ')}`);
const moduleCycles = findCycles(moduleGraph);
for (const cycle of moduleCycles) {
  console.error(`module cycle: ${cycle.join(' -> ')}`);
  for (let i = 0; i + 1 < cycle.length; i += 1)
    console.error(`  ${witness.get(`${cycle[i]}>${cycle[i + 1]}`)}`);
}
if (fileCycles.length + moduleCycles.length > 0) process.exit(1);
console.log(`no import cycles among ${files.length} files and ${moduleGraph.size} modules`);
