/**
 * Vitest global setup: builds the migrated control-plane template database once per catalog
 * version, guarded by an advisory lock so parallel test runs on one server never race.
 */
import { quoteDatabase, withConnection } from '../../src/db/pg.js';
import { migrateControlPlane } from '../../src/migrations/index.js';
import { CONTROL_PLANE_DIR, controlPlaneTemplateName, testServerUrl } from './template.js';

// Any fixed number: it only has to be the same in every test run on this server.
const TEMPLATE_LOCK_KEY = '7283401992837461';

/** Builds the control-plane template database if this catalog version has none yet. */
export default async function setup(): Promise<void> {
  const template = controlPlaneTemplateName();
  const building = `${template}_build`;
  await withConnection(testServerUrl(), async (client) => {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [TEMPLATE_LOCK_KEY]);
    try {
      const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (existing.rowCount) return;
      // Built under another name and renamed at the end, so a crashed build never looks finished.
      await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(building)} WITH (FORCE)`);
      await client.query(`CREATE DATABASE ${quoteDatabase(building)}`);
      await migrateControlPlane(testServerUrl(building), CONTROL_PLANE_DIR, { createDatabase: false });
      await client.query(`ALTER DATABASE ${quoteDatabase(building)} RENAME TO ${quoteDatabase(template)}`);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [TEMPLATE_LOCK_KEY]);
    }
  });
}
