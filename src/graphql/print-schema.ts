/** `npm run schema:print`: writes schema.graphql from the code; needs no database. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type * as GraphQL from 'graphql';
import { buildSchema } from './schema.js';

// The graphql instance Pothos built the schema with: under bundlers (vitest) an ESM `import`
// can load graphql's other build, whose printer refuses types "from another realm".
const { lexicographicSortSchema, printSchema } = createRequire(import.meta.url)('graphql') as typeof GraphQL;

/** The printed SDL of the schema, as committed in schema.graphql. */
export function printedSchema(): string {
  return printSchema(lexicographicSortSchema(buildSchema())) + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = fileURLToPath(new URL('../../schema.graphql', import.meta.url));
  writeFileSync(target, printedSchema());
  process.stdout.write(`wrote ${target}\n`);
}
