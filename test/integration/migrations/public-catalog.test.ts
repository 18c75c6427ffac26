/**
 * A public golang-migrate catalog, used verbatim (OpenMeter's 269 PostgreSQL migrations, Apache
 * 2.0, test/fixtures/real-catalogs/openmeter): it loads, the tenants the engine migrates reach the
 * structure `psql -f` of the same files in order builds, and the down files take the engine's
 * tenants back exactly as far as they take psql's schema (all the catalog's tables are gone; what
 * its up files made outside their steps stays). The downs run side by side.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Pool } from 'pg';
import { describe, expect, it } from 'vitest';
import { readSchemaFingerprint } from '../../../src/fingerprints/read-schema.js';
import { diffDescriptions, formatDifference } from '../../../src/fingerprints/schema-differences.js';
import { EXTENSIONS_SCHEMA, fileNameOf, loadCatalog, migrateDown, migrateUp } from '../../../src/migrations/index.js';
import type { MigrationCatalog, MigrationTarget } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';

const CATALOG_DIR = path.resolve('test/fixtures/real-catalogs/openmeter/migrations');
// Two tenants: enough to show every tenant ends alike, few enough for a loaded 2-core machine.
const TENANTS = ['openmeter_a', 'openmeter_b'];

describe('a public golang-migrate catalog (OpenMeter, 269 migrations)', () => {
  const db = useTestDatabase();

  it('loads verbatim, migrates tenants to the structure psql -f builds, and back down', async () => {
    const catalog = await loadCatalog(CATALOG_DIR);
    expect(catalog.files).toHaveLength(269);
    expect(catalog.files.every((file) => file.reversible)).toBe(true);
    // Files with their own BEGIN/COMMIT are found and run unwrapped.
    expect(catalog.files.some((file) => !file.transactional)).toBe(true);

    const reference = 'reference';
    await db.pool.query(`CREATE SCHEMA ${reference}`);
    const targets = TENANTS.map((name) => db.tenantTarget(name));
    await Promise.all(targets.map((target) => migrateUp(db.pool, target, catalog)));
    // After the engine: its first tenant put pgcrypto (one per database) in the extensions schema,
    // which psql's search_path includes as the tenants' does, so psql's CREATE EXTENSION IF NOT
    // EXISTS finds it there rather than racing to install it in its own schema.
    await psqlFiles(db.url, reference, catalog, 'up');
    const built = await structureOf(db.pool, reference);
      expect(built.description.tables.length).toBeGreaterThan(50);
      for (const target of targets) expectSameStructure(await structureOf(db.pool, target.schema), built);

      // One tenant back down a version at a time, the other in one call; psql runs every down file.
      const [stepwise, whole] = targets as [MigrationTarget, MigrationTarget];
      const stepDown = async () => {
        const newestFirst = [...catalog.files].reverse();
        for (const [i, file] of newestFirst.entries()) {
          const below = newestFirst[i + 1]?.version ?? '0';
          const result = await migrateDown(db.pool, stepwise, catalog, { toVersion: below });
          expect(result.steps.map((step) => step.version)).toEqual([file.version]);
        }
      };
      await Promise.all([
        psqlFiles(db.url, reference, catalog, 'down'),
        stepDown(),
        migrateDown(db.pool, whole, catalog, { toVersion: '0' }),
      ]);
      // The catalog's own down files leave behind a backup table and helper functions its up
      // files made outside their steps: the tenants keep exactly what psql's schema keeps.
      const left = await structureOf(db.pool, reference);
      for (const target of targets) expectSameStructure(await structureOf(db.pool, target.schema), left);
      expect(left.description.tables.map((table) => table.name)).toEqual([
        'om_migration_backup_20260716150455_gathering_details',
      ]);
      const { sequences, views, types, triggers } = left.description;
      expect({ sequences, views, types, triggers }).toEqual({ sequences: [], views: [], types: [], triggers: [] });
  }, 180_000);
});

async function structureOf(pool: Pool, schema: string) {
  return readSchemaFingerprint(pool, schema);
}

/** Equal fingerprints; on a difference, the first differences by name rather than two hashes. */
function expectSameStructure(
  actual: Awaited<ReturnType<typeof structureOf>>,
  expected: Awaited<ReturnType<typeof structureOf>>,
): void {
  const differences = diffDescriptions(expected.description, actual.description).map(formatDifference);
  expect(differences.slice(0, 10)).toEqual([]);
  expect(actual.hash).toBe(expected.hash);
}

/**
 * Runs the catalog's up files in order (or its down files, newest first) with one `psql`, each
 * `-f` unwrapped as golang-migrate runs them, stopping at the first error.
 */
async function psqlFiles(
  url: string,
  schema: string,
  catalog: MigrationCatalog,
  direction: 'up' | 'down',
): Promise<void> {
  const files = direction === 'up' ? catalog.files : [...catalog.files].reverse();
  const args = files.flatMap((file) => ['-f', path.join(catalog.dir, fileNameOf(file, direction))]);
  await promisify(execFile)('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', url, ...args], {
    env: { ...process.env, PGOPTIONS: `-c search_path=${schema},${EXTENSIONS_SCHEMA} -c client_min_messages=warning` },
    maxBuffer: 64 * 1024 * 1024,
  });
}
