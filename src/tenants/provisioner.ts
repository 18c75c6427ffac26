/**
 * Provisioning a tenant's home: create its schema (SCHEMA isolation) or its database (DATABASE
 * isolation) with this deployment's ownership marker, then apply the whole catalog. A retry after
 * a failure or a crash finds its own marker and carries on; an object of the same name that this
 * deployment did not create is an OwnershipConflictError and is left untouched.
 *
 * Three ways, fastest first. A long catalog (PROVISION_TEMPLATE) is made from its template: the
 * catalog's end state built once and verified by fingerprint (templates/, bound by the composition
 * root). Otherwise a new schema costs one round trip: the ownership guard creates and marks it
 * under the tenant's lock in the transaction that applies every file. Anything else (a retry, a
 * conflict, a failing file, a no-transaction file) takes the careful path: create and mark, then the
 * engine's migrateUp, which names failures by file and throws the typed ownership error.
 */
import { createHash } from 'node:crypto';
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
import { migrateUpInOneTrip } from '../migrations/one-trip.js';
import { ledgerTargetOf, type TenantDatabaseLocation as LedgerLocation } from './ledger-target.js';
import {
  judgeOwnership,
  markOwnedSql,
  ownershipGuardSql,
  ownershipQuery,
  type OwnedLocation,
} from './ownership.js';
import type {
  MigrateOptions,
  MigrateResult,
  MigrationCatalog,
  MigrationTarget,
} from '../migrations/index.js';

/**
 * The template path (templates/provision-templates.ts, bound by the composition root): each
 * answers null when no template applies or it could not be used, having changed nothing.
 */
export interface ProvisionTemplates {
  /** Makes a new SCHEMA tenant from the catalog's template, under `target`'s lock and guard. */
  provisionSchema(request: SchemaTemplateRequest): Promise<MigrateResult | null>;
  /** The template database a new DATABASE tenant is copied from. */
  databaseTemplate(request: {
    readonly connectionString: string;
    readonly catalog: MigrationCatalog;
    readonly deploymentId: string;
    readonly lockTimeoutMs: number;
  }): Promise<DatabaseTemplate | null>;
}

/** A new SCHEMA tenant, as the template path needs it. */
export interface SchemaTemplateRequest {
  readonly pool: pg.Pool;
  readonly connectionString: string;
  readonly databaseName: string;
  /** The tenant's target with its ownership guard (which creates and marks the schema). */
  readonly target: MigrationTarget;
  readonly catalog: MigrationCatalog;
  readonly lockTimeoutMs: number;
  readonly deploymentId: string;
  /** `COMMENT ON SCHEMA <tenant> IS <marker>`, for a spare schema renamed to the tenant's. */
  readonly markSql: string;
}

/** A finished template database and how to check a copy of it. */
export interface DatabaseTemplate {
  readonly name: string;
  /** Verifies a copy; null (logged) when its structure is not the expected one and nothing was committed. */
  verifyCopy(pool: pg.Pool, target: MigrationTarget): Promise<MigrateResult | null>;
  /** The template could not be copied (it went): the next provisioning checks the server again. */
  forget(): void;
}

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
  /** The template path; none: always replay. */
  readonly templates?: ProvisionTemplates;
}

/**
 * Creates the tenant's database (DATABASE isolation) or schema with the ownership marker, then its
 * ledger, and applies every catalog file: from the catalog's template when one applies, else in
 * one round trip for a new schema, else on the engine's careful path (see the top of this file).
 */
export async function provisionTenant({
  location,
  connectionString,
  pool,
  catalog,
  deploymentId,
  ledgerTable,
  options = {},
  templates,
}: ProvisionTenantInput): Promise<MigrateResult> {
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const table = ledgerTable ?? LEDGER_TABLE;
  const applied = async (result: MigrateResult): Promise<MigrateResult> => {
    for (const step of result.steps) await options.onApplied?.(step);
    return result;
  };
  if (location.isolation === 'DATABASE') {
    const template = await templates?.databaseTemplate({
      connectionString,
      catalog,
      deploymentId,
      lockTimeoutMs,
    });
    const made = await createOwnedDatabase(
      connectionString,
      location,
      deploymentId,
      lockTimeoutMs,
      template?.name,
    );
    if (template && made === 'copied') {
      const verified = await template.verifyCopy(pool, ledgerTargetOf(location, table));
      if (verified) return applied(verified);
      // The copy is not the expected structure (logged): it goes, and the catalog is replayed.
      await dropOwnedDatabase(connectionString, location, lockTimeoutMs);
      await createOwnedDatabase(connectionString, location, deploymentId, lockTimeoutMs);
    } else if (template && made === 'created') {
      template.forget();
    }
  } else {
    // The guard creates and marks the schema under the tenant's lock, in the transaction that fills it.
    const guarded = {
      ...ledgerTargetOf(location, table),
      guardSql: ownershipGuardSql(location, deploymentId),
    };
    const fromTemplate = await templates?.provisionSchema({
      pool,
      connectionString,
      databaseName: location.databaseName,
      target: guarded,
      catalog,
      lockTimeoutMs,
      deploymentId,
      markSql: markOwnedSql(location, deploymentId),
    });
    if (fromTemplate) return applied(fromTemplate);
    const attempt = await migrateUpInOneTrip(pool, guarded, catalog, {
      ...options,
      toVersion: catalog.latest,
      expectedVersion: null,
      prepareDatabase: true,
    });
    if (attempt.kind === 'moved') return applied(attempt.result);
    await createOwnedSchema(pool, ledgerTargetOf(location, table), location, deploymentId, lockTimeoutMs);
  }
  return migrateUp(pool, ledgerTargetOf(location, table), catalog, {
    ...options,
    toVersion: catalog.latest,
    // The one trip was tried (or is no use: a database made now has an empty ledger, tried below).
    ...(location.isolation === 'DATABASE' ? { expectedVersion: null } : {}),
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

// CREATE DATABASE cannot run in a transaction, so a new database and its marker are separate
// statements. The database is made under a staging name that carries this deployment's id (see
// stagingDatabaseOf), marked, and only then renamed to the tenant's: a connection lost after any
// of the three leaves either nothing under the tenant's name or the marked database, never an
// unmarked one (which judgeOwnership must refuse). A staging database found is a lost attempt's
// and holds nothing yet: it is dropped and made again. A session advisory lock on the maintenance
// database, keyed by the tenant's database name, makes two workers take turns.
// With a template, a database that is absent is made as its copy ('copied').
async function createOwnedDatabase(
  connectionString: string,
  location: TenantDatabaseLocation,
  deploymentId: string,
  lockTimeoutMs: number,
  template?: string,
): Promise<'copied' | 'created' | 'existing'> {
  return withProvisionLock(connectionString, location, lockTimeoutMs, async (client) => {
    const existing = await client.query<{ marker: string | null }>(ownershipQuery(location));
    const ownership = judgeOwnership(existing.rows[0], location, deploymentId);
    if (ownership === 'adopted') await client.query(markOwnedSql(location, deploymentId));
    if (ownership !== 'absent') return 'existing';
    const staging = stagingDatabaseOf(deploymentId, location.databaseName);
    await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(staging)} WITH (FORCE)`);
    const made = await createDatabase(client, quoteDatabase(staging), template);
    await client.query(markOwnedSql({ ...location, databaseName: staging }, deploymentId));
    await renameDatabase(client, staging, location.databaseName);
    return made;
  });
}

/**
 * The name a new tenant database is made under before it is marked and renamed:
 * `cp_new_<deployment 8>_<16 hex of the tenant database's name>`.
 */
export function stagingDatabaseOf(deploymentId: string, databaseName: string): string {
  const key = createHash('sha256').update(databaseName).digest('hex').slice(0, 16);
  return `cp_new_${deploymentId.replace(/-/g, '').slice(0, 8)}_${key}`;
}

// RENAME refuses a database anybody is connected to (55006); the only session that can be in a
// database made a moment ago is an autovacuum worker's, gone within moments: a few tries.
async function renameDatabase(client: pg.Client, from: string, to: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query(`ALTER DATABASE ${quoteDatabase(from)} RENAME TO ${quoteDatabase(to)}`);
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== '55006' || attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

// A copy of the template when there is one; a plain database when the template went since it was
// checked (3D000) or somebody is connected to it (55006): the catalog is then replayed into it.
async function createDatabase(
  client: pg.Client,
  name: string,
  template?: string,
): Promise<'copied' | 'created'> {
  if (template) {
    try {
      await client.query(`CREATE DATABASE ${name} TEMPLATE ${quoteDatabase(template)}`);
      return 'copied';
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== '3D000' && code !== '55006') throw error;
    }
  }
  await client.query(`CREATE DATABASE ${name}`);
  return 'created';
}

// Drops a database this provisioning just copied (our marker is on it), under the same lock.
async function dropOwnedDatabase(
  connectionString: string,
  location: TenantDatabaseLocation,
  lockTimeoutMs: number,
): Promise<void> {
  await withProvisionLock(connectionString, location, lockTimeoutMs, async (client) => {
    // FORCE: the verification's pooled connections to it are idle, and go with it.
    await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(location.databaseName)} WITH (FORCE)`);
  });
}

async function withProvisionLock<T>(
  connectionString: string,
  location: TenantDatabaseLocation,
  lockTimeoutMs: number,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const key = advisoryLockKey(`provision-database/${location.databaseName}`);
  return withConnection(withDatabase(connectionString, 'postgres'), async (client) => {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    await client.query('SELECT pg_advisory_lock($1::bigint)', [key]);
    // The lock goes with the connection.
    return fn(client);
  });
}
