/**
 * B1's engine segment: the worker's one-trip move and fingerprint read for each schema, with no
 * control plane. Its rate is only worth reading if every schema really took that path.
 */
import { describe, expect, it } from 'vitest';
import { ENGINE_SCHEMA_MARKER, runEngineFloor } from '../../../bench/lib/engine-floor.js';
import { createSchemas } from '../../../bench/lib/seed.js';
import { readSchemaFingerprint } from '../../../src/fingerprints/read-schema.js';
import { loadCatalog, readLedger, LEDGER_TABLE } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';

const CATALOG_DIR = 'bench/fixtures/catalog';

describe('runEngineFloor', () => {
  const db = useTestDatabase();

  it('moves every schema to the latest version in one trip, ledger and ownership marker included', async () => {
    const catalog = await loadCatalog(CATALOG_DIR);
    const schemas = ['engine_a', 'engine_b', 'engine_c', 'engine_d', 'engine_e'];
    await createSchemas(db.pool, schemas, ENGINE_SCHEMA_MARKER);
    const { seconds } = await runEngineFloor(db.url, catalog, schemas, 2, { fingerprint: true });
    expect(seconds).toBeGreaterThan(0);
    const fingerprints = new Set<string>();
    for (const schema of schemas) {
      const ledger = await readLedger(db.pool, { schema, ledgerTable: LEDGER_TABLE });
      expect(ledger.map((entry) => entry.version)).toEqual(catalog.files.map((file) => file.version));
      fingerprints.add((await readSchemaFingerprint(db.pool, schema)).hash);
    }
    // The same structure everywhere: the moves were whole.
    expect(fingerprints.size).toBe(1);
  });

  it('fails instead of measuring another path when a move cannot go in one trip', async () => {
    const catalog = await loadCatalog(CATALOG_DIR);
    // Already at the latest version: the one-trip move expects an empty ledger and refuses.
    await createSchemas(db.pool, ['engine_done'], ENGINE_SCHEMA_MARKER);
    await runEngineFloor(db.url, catalog, ['engine_done'], 1, { fingerprint: false });
    await expect(runEngineFloor(db.url, catalog, ['engine_done'], 1, { fingerprint: false })).rejects.toThrow(
      /engine_done was not moved in one trip \(unexpected-ledger\)/,
    );
  });
});
