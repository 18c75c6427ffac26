/**
 * Migrating the control plane's own database with the same engine: create the database when
 * missing, then apply `migrations/control_plane` to schema `control_plane`.
 */
import { databaseOf, withDatabase } from '../config.js';
import { createPgPool, quoteDatabase, withConnection } from '../db/pg.js';
import { loadCatalog } from './catalog.js';
import { migrateUp } from './tenant-migrator.js';
import type { MigrateOptions, MigrateResult, MigrationTarget } from './types.js';

/** Where the control plane's ledger lives and the lock every booting process takes. */
export const CONTROL_PLANE_TARGET: MigrationTarget = Object.freeze({
  schema: 'control_plane',
  lockKey: 'control_plane',
});

/** Options of `migrateControlPlane`. */
export interface MigrateControlPlaneOptions extends Pick<MigrateOptions, 'lockTimeoutMs' | 'onApplied'> {
  /** Create the database first when it does not exist; default true. */
  readonly createDatabase?: boolean;
}

/** Creates the control-plane database if needed and applies every pending control-plane migration. */
export async function migrateControlPlane(
  databaseUrl: string,
  dir = 'migrations/control_plane',
  options: MigrateControlPlaneOptions = {},
): Promise<MigrateResult> {
  const catalog = await loadCatalog(dir);
  if (options.createDatabase ?? true) await ensureDatabase(databaseUrl);
  const pool = createPgPool({ connectionString: databaseUrl, max: 2, applicationName: 'tenant-control-plane-migrate' });
  try {
    return await migrateUp(pool, CONTROL_PLANE_TARGET, catalog, {
      lockTimeoutMs: options.lockTimeoutMs ?? 30_000,
      onApplied: options.onApplied,
    });
  } finally {
    await pool.end();
  }
}

/** Creates the database named in `url` on its server when missing; returns whether it created it. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const database = databaseOf(url);
  const quoted = quoteDatabase(database);
  return withConnection(withDatabase(url, 'postgres'), async (client) => {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (existing.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quoted}`);
      return true;
    } catch (error) {
      // Another process created it between our check and CREATE: that is the outcome we wanted.
      const code = (error as { code?: unknown }).code;
      if (code === '42P04' || code === '23505') return false;
      throw error;
    }
  });
}
