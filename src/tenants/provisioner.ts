/**
 * Provisioning a tenant's home: create its schema (SCHEMA isolation) or its database (DATABASE
 * isolation) with this deployment's ownership marker, then apply the whole catalog. A retry after
 * a failure or a crash finds its own marker and carries on; an object of the same name that this
 * deployment did not create is an OwnershipConflictError and is left untouched.
 */
import type pg from 'pg';
import { withDatabase } from '../config.js';
import { quoteDatabase, quoteSchema, withConnection } from '../db/pg.js';
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  LEDGER_TABLE,
  advisoryLockKey,
  migrateUp,
  withTargetTransaction,
} from '../migrations/index.js';
import { ledgerTargetOf, type TenantDatabaseLocation as LedgerLocation } from './ledger-target.js';
import { judgeOwnership, markOwnedSql, ownershipQuery, type OwnedLocation } from './ownership.js';
import type {
  MigrateOptions,
  MigrateResult,
  MigrationCatalog,
  MigrationTarget,
} from '../migrations/index.js';

/** A tenant database row as the provisioner needs it. */
export interface TenantDatabaseLocation extends LedgerLocation, OwnedLocation {
  readonly isolation: 'SCHEMA' | 'DATABASE';
}

export interface ProvisionTenantInput {
  readonly location: TenantDatabaseLocation;
  /** The tenant database's decrypted connection string (its own database for DATABASE isolation). */
  readonly connectionString: string;
  readonly pool: pg.Pool;
  readonly catalog: MigrationCatalog;
  /** This control plane's deployment id (deployment.ts), written as the ownership marker. */
  readonly deploymentId: string;
  /** The deployment's ledger table name (LEDGER_TABLE); default the engine's, `control_plane_ledger`. */
  readonly ledgerTable?: string;
  readonly options?: Omit<MigrateOptions, 'toVersion'>;
}

/**
 * Creates the tenant's database (DATABASE isolation) or schema with the ownership marker, then its
 * ledger, and applies every catalog file. A new tenant's ledger is empty, so the engine first
 * tries all of it in one round trip; anything else (a retry after a crash) takes its careful
 * path, which reports failures by file.
 */
export async function provisionTenant({
  location,
  connectionString,
  pool,
  catalog,
  deploymentId,
  ledgerTable,
  options = {},
}: ProvisionTenantInput): Promise<MigrateResult> {
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (location.isolation === 'DATABASE') {
    await createOwnedDatabase(connectionString, location, deploymentId, lockTimeoutMs);
  } else {
    await createOwnedSchema(
      pool,
      ledgerTargetOf(location, ledgerTable ?? LEDGER_TABLE),
      location,
      deploymentId,
      lockTimeoutMs,
    );
  }
  return migrateUp(pool, ledgerTargetOf(location, ledgerTable ?? LEDGER_TABLE), catalog, {
    ...options,
    toVersion: catalog.latest,
    expectedVersion: null,
    // The tenants database is shared: create its extensions schema and revoke CREATE on public.
    prepareDatabase: true,
  });
}

// Under the tenant's advisory lock (the engine's), in two round trips: read the marker, then
// create and mark the schema (or only commit) with the COMMIT. Schema and marker commit together.
async function createOwnedSchema(
  pool: pg.Pool,
  target: MigrationTarget,
  location: TenantDatabaseLocation,
  deploymentId: string,
  lockTimeoutMs: number,
): Promise<void> {
  await withTargetTransaction(
    pool,
    target,
    lockTimeoutMs,
    async (_client, tx) => {
      const row = tx.opening[0]?.rows[0] as { marker: string | null } | undefined;
      const ownership = judgeOwnership(row, location, deploymentId);
      if (ownership === 'absent') tx.commitWith(`CREATE SCHEMA ${quoteSchema(location.schemaName ?? '')}`);
      if (ownership !== 'owned') tx.commitWith(markOwnedSql(location, deploymentId));
    },
    { opening: ownershipQuery(location) },
  );
}

// CREATE DATABASE cannot run in a transaction, so the database and its marker are two statements.
// A session advisory lock on the maintenance database, keyed by the database name, makes two
// workers of this deployment take turns, so neither finds the other's database before its marker.
async function createOwnedDatabase(
  connectionString: string,
  location: TenantDatabaseLocation,
  deploymentId: string,
  lockTimeoutMs: number,
): Promise<void> {
  const key = advisoryLockKey(`provision-database/${location.databaseName}`);
  await withConnection(withDatabase(connectionString, 'postgres'), async (client) => {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    await client.query('SELECT pg_advisory_lock($1::bigint)', [key]);
    const existing = await client.query<{ marker: string | null }>(ownershipQuery(location));
    const ownership = judgeOwnership(existing.rows[0], location, deploymentId);
    if (ownership === 'absent') await client.query(`CREATE DATABASE ${quoteDatabase(location.databaseName)}`);
    if (ownership !== 'owned') await client.query(markOwnedSql(location, deploymentId));
    // The lock goes with the connection.
  });
}
