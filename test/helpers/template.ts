/**
 * The migrated control-plane template every `useTestDatabase({ controlPlane: true })` clones.
 * Its name carries a hash of the control-plane catalog, so a catalog change builds a new one.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { withDatabase } from '../../src/config.js';

/** The control-plane catalog the template is migrated with. */
export const CONTROL_PLANE_DIR = path.resolve(import.meta.dirname, '../../migrations/control_plane');

/** The server tests create their databases on (TEST_DATABASE_URL overrides it). */
export function testServerUrl(database = 'postgres'): string {
  return withDatabase(
    process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    database,
  );
}

/** `cpt_tpl_<hash>`: the template database for the current control-plane catalog. */
export function controlPlaneTemplateName(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(CONTROL_PLANE_DIR)
    .filter((name) => name.endsWith('.sql'))
    .sort()) {
    hash.update(file).update(readFileSync(path.join(CONTROL_PLANE_DIR, file)));
  }
  return `cpt_tpl_${hash.digest('hex').slice(0, 16)}`;
}
