/**
 * B1's engine segment: what the tenant database must do for the control plane's rollout, with no
 * control plane. Each tenant gets the worker's own move, built by the same engine functions: one
 * round trip of the tenant's advisory lock, the ownership guard, the ledger (created on a fresh
 * schema, checked against the expected version), the catalog's files, the ledger rows and COMMIT,
 * and, as FINGERPRINT_AFTER_TARGET has it by default, the schema's fingerprint read after the COMMIT
 * in the same round trip. The connections are one pool of `connections`, as the worker's slots.
 *
 * Left out: the claim and the finish (control-plane database), the events (Redis), the comparison
 * with the expected structure (a hash lookup in the worker). So its rate is the most any control
 * plane built on this engine could reach on the machine; its ratio to the raw floor is the
 * ceiling of the control plane's, and the control plane's ratio to it is what its own work costs.
 */
import pg from 'pg';
import { schemaFingerprintRead } from '../../src/fingerprints/read-schema.js';
import { LEDGER_TABLE, type MigrationCatalog } from '../../src/migrations/index.js';
import { ledgerTargetOf } from '../../src/migrations/ledger-target.js';
import { migrateUpInOneTrip } from '../../src/migrations/one-trip.js';
import { ownershipGuardSql, ownershipMarker } from '../../src/tenants/ownership.js';

/** The deployment the engine segment's schemas belong to (any id: the guard checks it). */
const DEPLOYMENT_ID = '00000000-0000-4000-8000-00000000b1e0';

/** The comment the engine segment's schemas must carry (createSchemas' `marker`), as the control plane's tenants do. */
export const ENGINE_SCHEMA_MARKER = ownershipMarker(DEPLOYMENT_ID);

export interface EngineFloorOptions {
  /** Read each schema's fingerprint after its COMMIT, as the worker does by default. */
  readonly fingerprint: boolean;
}

/**
 * Moves each of `schemas` (made with ENGINE_SCHEMA_MARKER) to the catalog's latest version on
 * `connections` connections; fails when a move did not take the one-trip path to the latest
 * version (as the worker's would for these fresh schemas) or its fingerprint read failed.
 */
export async function runEngineFloor(
  url: string,
  catalog: MigrationCatalog,
  schemas: readonly string[],
  connections: number,
  options: EngineFloorOptions,
): Promise<{ seconds: number }> {
  const databaseName = new URL(url).pathname.slice(1);
  const locations = schemas.map((schemaName) => ({ isolation: 'SCHEMA' as const, databaseName, schemaName }));
  const pool = new pg.Pool({ connectionString: url, max: connections });
  try {
    // Connected before the timing, as the worker's pool is; each connection prepares the
    // fingerprint statement at its first read, as the worker's do.
    const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
    clients.forEach((client) => client.release());
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: connections }, async () => {
        for (let i = next++; i < locations.length; i = next++) {
          const location = locations[i]!;
          const target = {
            ...ledgerTargetOf(location, LEDGER_TABLE),
            guardSql: ownershipGuardSql(location, DEPLOYMENT_ID),
          };
          // migrateUp's first attempt, called directly: a fall back to the careful path would
          // measure something else, so it fails the segment instead.
          const outcome = await migrateUpInOneTrip(pool, target, catalog, {
            expectedVersion: null,
            ...(options.fingerprint ? { readAfterCommit: schemaFingerprintRead(target.schema) } : {}),
          });
          if (outcome.kind !== 'moved' || outcome.result.toVersion !== catalog.latest)
            throw new Error(`engine segment: ${target.schema} was not moved in one trip (${outcome.kind})`);
          if (options.fingerprint && !outcome.afterCommit?.ok)
            throw new Error(`engine segment: no fingerprint of ${target.schema}`, {
              cause: outcome.afterCommit?.ok === false ? outcome.afterCommit.error : undefined,
            });
        }
      }),
    );
    return { seconds: (performance.now() - started) / 1000 };
  } finally {
    await pool.end();
  }
}
