import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { databaseOf, withDatabase, type Config } from '../config.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { ControlPlaneDb, ControlPlanePool } from '../db/control-plane.js';
import { quoteDatabase, quoteSchema, withConnection } from '../db/pg.js';
import type { TenantPools } from '../db/tenant-pools.js';
import {
  AppError,
  ConflictError,
  NotFoundError,
  PreconditionFailedError,
  ValidationError,
} from '../errors.js';
import { Prisma, type MigrationRun, type Tenant, type TenantDatabase } from '../generated/prisma/client.js';
import type { IsolationMode, TenantEnvironment, TenantStatus } from '../generated/prisma/enums.js';
import type { Logger } from '../logger.js';
import { getHistory, getStatus, withTargetTransaction, type HistoryEntry } from '../migrations/index.js';
import type { MigrationCatalog, MigrationFile } from '../migrations/types.js';
import type { TargetDispatch } from '../runs/target-dispatch.js';
import type { Placement, ServerService } from '../servers/server-service.js';
import type { Actor } from '../runs/types.js';
import { createDeploymentIdReader } from './deployment.js';
import { ledgerTargetOf } from './ledger-target.js';
import { tenantObjectName, validateTenantName } from './naming.js';
import { assertOwned, objectNameOf, type Ownership } from './ownership.js';
import { REGISTRATION_CONSTRAINTS, registerTenant, type RegisteredTenant } from './tenant-registration.js';

const ENDED_TARGET_STATUSES = ['SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED'] as const;
// SQLSTATE of a statement the read pools' statement_timeout cancelled.
const QUERY_CANCELED = '57014';

/** A read of a tenant's own database outlasted TENANT_READ_TIMEOUT_MS and was cancelled. */
export class TenantReadTimeoutError extends AppError<'TENANT_DATABASE_TIMEOUT'> {
  constructor(timeoutMs: number, options?: ErrorOptions) {
    super(
      'TENANT_DATABASE_TIMEOUT',
      `Reading the tenant database took longer than ${timeoutMs} ms and was cancelled; try again later`,
      options,
    );
  }
}

export interface TenantServiceDeps {
  readonly db: ControlPlaneDb;
  /** Plain pg connections to the control-plane DB, for registering tenants in one statement. */
  readonly controlPlanePool: ControlPlanePool;
  readonly config: Pick<
    Config,
    'tenantReadTimeoutMs' | 'tenantObjectPrefix' | 'lockTimeoutMs' | 'ledgerTable'
  >;
  /** Where a new tenant is placed. */
  readonly servers: Pick<ServerService, 'placeTenant'>;
  /** Where a new tenant's provisioning job goes. */
  readonly queue: Pick<TargetDispatch, 'enqueue'>;
  readonly secretBox: SecretBox;
  /** For changing tenant databases (dropping a tenant's data). */
  readonly tenantPools: TenantPools;
  /**
   * For reading tenant ledgers on behalf of API callers: pools of their own with a
   * `statement_timeout`, so a flood of reads can neither starve nor outlast the worker's.
   */
  readonly readPools: TenantPools;
  readonly catalog: MigrationCatalog;
  /** The release of `catalog` (published at boot) that provisioning runs pin; default none (each worker's own). */
  readonly catalogReleaseId?: string | null;
  readonly logger: Logger;
  /**
   * Backs a tenant database up before deleteTenant(dropData) drops it (bound to backups/ by the
   * composition root); a failed backup refuses the delete with nothing changed.
   */
  readonly backupBeforeDrop?: (database: TenantDatabase) => Promise<void>;
}

export interface CreateTenantInput {
  readonly name: string;
  readonly environment?: TenantEnvironment | null;
  readonly isolation?: IsolationMode | null;
  /** The database server's id; default: the accepting server with the fewest tenants. */
  readonly serverId?: string | null;
}

export interface UpdateTenantInput {
  readonly id: string;
  readonly name?: string | null;
  readonly environment?: TenantEnvironment | null;
}

export interface DeleteTenantInput {
  readonly id: string;
  readonly confirmName: string;
  readonly dropData?: boolean | null;
}

/** Where a new tenant lives on the tenant server, derived from its name, isolation and the deployment's prefix. */
export interface TenantLocation {
  readonly isolation: IsolationMode;
  readonly host: string;
  readonly port: number;
  readonly databaseName: string;
  readonly schemaName: string | null;
  /** Secret: sealed before it is stored, never returned or logged. */
  readonly connectionString: string;
}

/** Where a new tenant named `name` goes on the server of `tenantDatabaseUrl`, its object named `prefix` + name. */
export function tenantLocation(
  tenantDatabaseUrl: string,
  name: string,
  isolation: IsolationMode,
  prefix?: string,
): TenantLocation {
  const objectName = tenantObjectName(name, prefix);
  const url = new URL(tenantDatabaseUrl);
  const host = url.hostname;
  const port = url.port ? Number(url.port) : 5432;
  if (isolation === 'DATABASE') {
    return {
      isolation,
      host,
      port,
      databaseName: objectName,
      schemaName: null,
      connectionString: withDatabase(tenantDatabaseUrl, objectName),
    };
  }
  return {
    isolation,
    host,
    port,
    databaseName: databaseOf(tenantDatabaseUrl),
    schemaName: objectName,
    connectionString: tenantDatabaseUrl,
  };
}

/** Tenants: creating (with a provisioning run), renaming, status changes, deletion, ledger reads. */
export function createTenantService({
  db,
  controlPlanePool,
  config,
  servers,
  queue,
  secretBox,
  tenantPools,
  readPools,
  catalog,
  catalogReleaseId,
  logger,
  backupBeforeDrop,
}: TenantServiceDeps) {
  const deploymentId = createDeploymentIdReader(db);
  // The last placement per requested server ('' for automatic), kept while the registration
  // finds the server as it was: the only one accepting tenants (automatic), or still accepting
  // (named). Saves createTenant the placement's round trip and its count of every tenant.
  const placements = new Map<string, Placement>();

  /**
   * Validates, registers the tenant, its database row and its PROVISION run (target admitted) in
   * one statement, then enqueues the provisioning job. ConflictError when the name is taken or a
   * schema/database of the tenant's name already exists (on its server or in the control
   * plane): the service never adopts an object it did not create; ValidationError for a server
   * that is unknown or does not accept tenants. Nothing is created then.
   */
  async function createTenant(
    input: CreateTenantInput,
    actor: Actor,
  ): Promise<{ tenant: Tenant; provisioning: MigrationRun }> {
    const name = validateTenantName(input.name);
    const key = input.serverId ?? '';
    // A remembered placement first; when its server has changed since, a fresh one (twice at most:
    // a server changing again between the fresh read and the registration is refused).
    for (let fresh = !placements.has(key), tries = 0; tries < 3; fresh = true, tries++) {
      const placement = fresh ? await servers.placeTenant(input.serverId) : placements.get(key)!;
      const registered = await registerOn(placement, name, input, actor);
      if (!registered) {
        placements.delete(key);
        continue;
      }
      if (input.serverId || placement.onlyAccepting) placements.set(key, placement);
      const { tenant, provisioning, targetId } = registered;
      // If this fails the target stays QUEUED without a job; the reconciler enqueues it.
      await queue.enqueue([{ targetId, runId: provisioning.id }]);
      return { tenant, provisioning };
    }
    throw new ConflictError('The database servers changed while the tenant was being placed; try again');
  }

  // Registers the tenant on `placement`'s server; null (nothing created) when that server is no
  // longer as the placement read it.
  async function registerOn(
    placement: Placement,
    name: string,
    input: CreateTenantInput,
    actor: Actor,
  ): Promise<RegisteredTenant | null> {
    const location = tenantLocation(
      placement.connectionString,
      name,
      input.isolation ?? 'SCHEMA',
      config.tenantObjectPrefix,
    );
    await assertLocationFree(location, placement.connectionString);
    // Chosen here so the connection string can be sealed bound to its row in the same statement.
    const tenantDatabaseId = randomUUID();
    try {
      return await registerTenant(controlPlanePool, {
        name,
        environment: input.environment ?? 'DEVELOPMENT',
        isolation: location.isolation,
        host: location.host,
        port: location.port,
        databaseName: location.databaseName,
        schemaName: location.schemaName,
        tenantDatabaseId,
        serverId: placement.serverId,
        connectionStringEncrypted: secretBox.sealConnectionString(
          tenantDatabaseId,
          location.connectionString,
        ),
        targetVersion: catalog.latest,
        catalogReleaseId: catalogReleaseId ?? null,
        requestedBy: actor.name,
        // An automatic placement on the only accepting server holds while it is still the only one.
        placedOn: { sealed: placement.sealed, onlyAccepting: !input.serverId && placement.onlyAccepting },
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        const takenName = (error as { constraint?: unknown }).constraint === REGISTRATION_CONSTRAINTS.name;
        const message = takenName
          ? `Tenant "${name}" already exists`
          : `Tenant "${name}" or its ${location.schemaName ? 'schema' : 'database'} already exists`;
        throw new ConflictError(message, { cause: error });
      }
      throw error;
    }
  }

  /** Renames a tenant (the schema keeps its name) or changes its environment. */
  async function updateTenant(input: UpdateTenantInput): Promise<Tenant> {
    const tenant = await requireTenant(input.id);
    assertNotDeleted(tenant);
    const data: Prisma.TenantUpdateInput = {};
    if (input.name != null && input.name !== tenant.name) data.name = validateTenantName(input.name);
    if (input.environment != null) data.environment = input.environment;
    if (Object.keys(data).length === 0) return tenant;
    try {
      return await db.tenant.update({ where: { tenantId: tenant.tenantId }, data });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(`Tenant "${input.name}" already exists`, { cause: error });
      throw error;
    }
  }

  /** Sets ACTIVE, INACTIVE or SUSPENDED (PENDING belongs to provisioning). */
  async function setTenantStatus(input: { id: string; status: TenantStatus }): Promise<Tenant> {
    if (input.status === 'PENDING')
      throw new ValidationError('PENDING is set by provisioning only', 'status');
    const tenant = await requireTenant(input.id);
    assertNotDeleted(tenant);
    if (tenant.status === input.status) return tenant;
    return db.tenant.update({ where: { tenantId: tenant.tenantId }, data: { status: input.status } });
  }

  /**
   * Deactivates a tenant; with `dropData` also marks it deleted and drops its schema (or
   * database). The row stays as a record. The caller checks that the principal may drop data.
   *
   * Under each tenant database's advisory lock (the engine's, with lock_timeout): the ownership
   * marker is checked (another deployment's or an unmarked object is a ConflictError, nothing
   * changed), then one control-plane transaction checks that no target is pending or running and
   * marks the tenant deleted, then the data is dropped. A drop that fails leaves the tenant marked
   * (runs skip it); deleting it again finishes the job, as it does when its schema came back.
   * A first delete with dropData backs the data up before all of this (`backupBeforeDrop`, when
   * bound); a failed backup refuses the delete with nothing changed.
   */
  async function deleteTenant(input: DeleteTenantInput): Promise<Tenant> {
    const tenant = await requireTenant(input.id);
    if (input.confirmName !== tenant.name) {
      throw new ValidationError('confirmName does not match the tenant name', 'confirmName');
    }
    if (!input.dropData) {
      if (tenant.deletedAt || tenant.status === 'INACTIVE') return tenant;
      return db.tenant.update({ where: { tenantId: tenant.tenantId }, data: { status: 'INACTIVE' } });
    }
    const owner = await deploymentId();
    const databases = await db.tenantDatabase.findMany({
      where: { tenantId: tenant.tenantId },
      orderBy: { id: 'asc' },
    });
    // A first delete backs the data up (a repeated one finishes a drop; its backup was taken).
    if (backupBeforeDrop && !tenant.deletedAt) {
      for (const database of databases) await backupBeforeDrop(database);
    }
    let marked: Tenant | null = null;
    // Under the first database's lock (a tenant has one today); once for the tenant.
    const markDeleted = async () => {
      marked ??= await markTenantDeleted(tenant);
    };
    for (const database of databases) {
      await dropTenantData(database, owner, markDeleted);
    }
    await markDeleted();
    logger.info('tenant data dropped', { tenantId: tenant.tenantId, name: tenant.name });
    return marked ?? (await requireTenant(tenant.tenantId));
  }

  // The busy check and the mark in one transaction, the tenant row locked: a run that selects the
  // tenant either committed its targets first (busy: refused) or sees it deleted.
  async function markTenantDeleted(tenant: Tenant): Promise<Tenant> {
    return db.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT 1 FROM control_plane.tenants WHERE tenant_id = ${tenant.tenantId}::uuid FOR UPDATE`;
      const busy = await tx.migrationRunTarget.count({
        where: { tenantId: tenant.tenantId, status: { notIn: [...ENDED_TARGET_STATUSES] } },
      });
      if (busy > 0) {
        throw new PreconditionFailedError('The tenant has run targets pending or running; cancel them first');
      }
      return tx.tenant.update({
        where: { tenantId: tenant.tenantId },
        data: { status: 'INACTIVE', deletedAt: tenant.deletedAt ?? new Date() },
      });
    });
  }

  /** Catalog files the tenant database has not applied yet, read from its own ledger. */
  async function pendingMigrations(database: TenantDatabase | undefined): Promise<readonly MigrationFile[]> {
    if (!database) return [];
    return readingLedger(async () => {
      const pool = await ledgerPool(database);
      if (!pool) return catalog.files;
      return (await getStatus(pool, ledgerTargetOf(database, config.ledgerTable), catalog)).pending;
    });
  }

  /** The tenant database's ledger, oldest first, each row checked against the catalog. */
  async function migrationHistory(database: TenantDatabase | undefined): Promise<readonly HistoryEntry[]> {
    if (!database) return [];
    return readingLedger(async () => {
      const pool = await ledgerPool(database);
      if (!pool) return [];
      return getHistory(pool, ledgerTargetOf(database, config.ledgerTable), catalog);
    });
  }

  async function readingLedger<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if ((error as { code?: unknown }).code === QUERY_CANCELED) {
        throw new TenantReadTimeoutError(config.tenantReadTimeoutMs, { cause: error });
      }
      throw error;
    }
  }

  async function requireTenant(tenantId: string): Promise<Tenant> {
    const tenant = await db.tenant.findUnique({ where: { tenantId } });
    if (!tenant) throw new NotFoundError('Tenant not found');
    return tenant;
  }

  // null when the tenant database does not exist (not provisioned yet, or dropped).
  async function ledgerPool(database: TenantDatabase): Promise<Pool | null> {
    const pool = readPools.poolFor(secretBox.openConnectionString(database));
    if (database.isolation !== 'DATABASE') return pool;
    try {
      await pool.query('SELECT 1');
      return pool;
    } catch (error) {
      if ((error as { code?: unknown }).code === '3D000') return null;
      throw error;
    }
  }

  // ConflictError when the new tenant's schema (or database) already exists on the tenant server.
  async function assertLocationFree(location: TenantLocation, serverUrl: string): Promise<void> {
    const kind = location.isolation === 'DATABASE' ? 'database' : 'schema';
    const name = location.schemaName ?? location.databaseName;
    const existing = await tenantPools
      .poolFor(serverUrl)
      .query(
        kind === 'database'
          ? 'SELECT 1 FROM pg_database WHERE datname = $1'
          : 'SELECT 1 FROM pg_namespace WHERE nspname = $1',
        [name],
      );
    if (existing.rowCount) {
      throw new ConflictError(
        `A ${kind} named "${name}" already exists on its database server; a tenant never takes over an existing ${kind}`,
      );
    }
  }

  /**
   * Drops one tenant database's data under its advisory lock, after checking the ownership marker;
   * `markDeleted` runs under the lock before anything is dropped. Idempotent: a schema or database
   * already gone is fine.
   */
  async function dropTenantData(
    database: TenantDatabase,
    owner: string,
    markDeleted: () => Promise<void>,
  ): Promise<void> {
    const connectionString = secretBox.openConnectionString(database);
    const objectName = objectNameOf(database);
    let phase: 'lock' | 'drop' = 'lock';
    let ownership: Ownership = 'absent';
    try {
      await withTargetTransaction(
        tenantPools.poolFor(connectionString),
        ledgerTargetOf(database, config.ledgerTable),
        config.lockTimeoutMs,
        async (client) => {
          ownership = await assertOwned(client, database, owner);
          await markDeleted();
          phase = 'drop';
          if (database.isolation === 'SCHEMA' && ownership !== 'absent') {
            await client.query(`DROP SCHEMA ${quoteSchema(objectName)} CASCADE`);
          }
        },
      );
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      // A DATABASE-isolated tenant whose database is gone (never provisioned, or dropped before).
      if (code === '3D000' && database.isolation === 'DATABASE') {
        await markDeleted();
      } else if (code === '55P03') {
        throw new PreconditionFailedError(
          phase === 'lock'
            ? `The tenant is being migrated: its lock was not free within ${config.lockTimeoutMs} ms; nothing was changed, try again`
            : `Dropping "${objectName}" waited more than ${config.lockTimeoutMs} ms for a lock held by another session; the tenant is marked deleted: delete it again to finish`,
          { cause: error },
        );
      } else {
        throw error;
      }
    }
    // DROP DATABASE cannot run in a transaction nor while connected to it; the tenant is marked
    // deleted by now, so no run starts on it in between.
    if (database.isolation === 'DATABASE' && ownership !== 'absent') {
      const quoted = quoteDatabase(objectName);
      await withConnection(withDatabase(connectionString, 'postgres'), async (client) => {
        await client.query(`SET lock_timeout = ${config.lockTimeoutMs}`);
        await client.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`);
      });
    }
    await db.tenantDatabase.update({
      where: { id: database.id },
      data: { status: 'INACTIVE', schemaVersion: null, lastError: null },
    });
  }

  return { createTenant, updateTenant, setTenantStatus, deleteTenant, pendingMigrations, migrationHistory };
}
export type TenantService = ReturnType<typeof createTenantService>;

function assertNotDeleted(
  tenant: Tenant,
  ErrorClass: typeof ValidationError | typeof PreconditionFailedError = ValidationError,
): void {
  if (!tenant.deletedAt) return;
  const message = `Tenant "${tenant.name}" was deleted`;
  throw ErrorClass === ValidationError
    ? new ValidationError(message, 'id')
    : new PreconditionFailedError(message);
}

/** Whether `error` is a unique-constraint violation, as Prisma (P2002) or the driver (23505) reports it. */
export function isUniqueViolation(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return true;
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const { code, cause } = current as { code?: unknown; cause?: unknown };
    if (code === '23505' || code === 'P2002') return true;
    current = cause;
  }
  return /unique constraint|23505/i.test(error instanceof Error ? error.message : '');
}
