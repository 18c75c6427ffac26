import type { Pool } from 'pg';
import { databaseOf, withDatabase, type Config } from '../config.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { ControlPlaneDb, ControlPlanePool } from '../db/control-plane.js';
import { quoteDatabase, quoteSchema, withConnection } from '../db/pg.js';
import type { TenantPools } from '../db/tenant-pools.js';
import { ConflictError, NotFoundError, PreconditionFailedError, ValidationError } from '../errors.js';
import { Prisma, type MigrationRun, type Tenant, type TenantDatabase } from '../generated/prisma/client.js';
import type { IsolationMode, TenantEnvironment, TenantStatus } from '../generated/prisma/enums.js';
import type { Logger } from '../logger.js';
import { getHistory, getStatus, type HistoryEntry } from '../migrations/index.js';
import type { MigrationCatalog, MigrationFile } from '../migrations/types.js';
import type { TargetDispatch } from '../runs/target-dispatch.js';
import type { Actor } from '../runs/types.js';
import { ledgerTargetOf } from './ledger-target.js';
import { isTenantObjectName, tenantObjectName, validateTenantName } from './naming.js';
import { REGISTRATION_CONSTRAINTS, registerTenant, type RegisteredTenant } from './tenant-registration.js';

const ENDED_TARGET_STATUSES = ['SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED'] as const;

export interface TenantServiceDeps {
  readonly db: ControlPlaneDb;
  /** Plain pg connections to the control-plane DB, for registering tenants in one statement. */
  readonly controlPlanePool: ControlPlanePool;
  readonly config: Pick<Config, 'tenantDatabaseUrl'>;
  /** Where a new tenant's provisioning job goes. */
  readonly queue: Pick<TargetDispatch, 'enqueue'>;
  readonly secretBox: SecretBox;
  readonly tenantPools: TenantPools;
  readonly catalog: MigrationCatalog;
  readonly logger: Logger;
}

export interface CreateTenantInput {
  readonly name: string;
  readonly environment?: TenantEnvironment | null;
  readonly isolation?: IsolationMode | null;
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

/** Where a tenant lives on the tenant server, derived from its name and isolation. */
export interface TenantLocation {
  readonly isolation: IsolationMode;
  readonly host: string;
  readonly port: number;
  readonly databaseName: string;
  readonly schemaName: string | null;
  /** Secret: sealed before it is stored, never returned or logged. */
  readonly connectionString: string;
}

/** Where a new tenant named `name` goes on the server of `tenantDatabaseUrl`. */
export function tenantLocation(
  tenantDatabaseUrl: string,
  name: string,
  isolation: IsolationMode,
): TenantLocation {
  const objectName = tenantObjectName(name);
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
  queue,
  secretBox,
  tenantPools,
  catalog,
  logger,
}: TenantServiceDeps) {
  /**
   * Validates, registers the tenant, its database row and its PROVISION run (target admitted) in
   * one statement, then enqueues the provisioning job. ConflictError when the name or the
   * schema/database is taken; nothing is created then.
   */
  async function createTenant(
    input: CreateTenantInput,
    actor: Actor,
  ): Promise<{ tenant: Tenant; provisioning: MigrationRun }> {
    const name = validateTenantName(input.name);
    const location = tenantLocation(config.tenantDatabaseUrl, name, input.isolation ?? 'SCHEMA');
    let registered: RegisteredTenant;
    try {
      registered = await registerTenant(controlPlanePool, {
        name,
        environment: input.environment ?? 'DEVELOPMENT',
        isolation: location.isolation,
        host: location.host,
        port: location.port,
        databaseName: location.databaseName,
        schemaName: location.schemaName,
        connectionStringEncrypted: secretBox.seal(location.connectionString),
        targetVersion: catalog.latest,
        requestedBy: actor.name,
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
    const { tenant, provisioning, targetId } = registered;
    // If this fails the target stays QUEUED without a job; the reconciler enqueues it.
    await queue.enqueue([{ targetId, runId: provisioning.id }]);
    return { tenant, provisioning };
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
   * Deactivates a tenant; with `dropData` also drops its schema (or database) and marks it
   * deleted. The row stays as a record. The caller checks that the principal may drop data.
   */
  async function deleteTenant(input: DeleteTenantInput): Promise<Tenant> {
    const tenant = await requireTenant(input.id);
    if (input.confirmName !== tenant.name) {
      throw new ValidationError('confirmName does not match the tenant name', 'confirmName');
    }
    assertNotDeleted(tenant, PreconditionFailedError);
    if (!input.dropData) {
      if (tenant.status === 'INACTIVE') return tenant;
      return db.tenant.update({ where: { tenantId: tenant.tenantId }, data: { status: 'INACTIVE' } });
    }
    const busy = await db.migrationRunTarget.count({
      where: { tenantId: tenant.tenantId, status: { notIn: [...ENDED_TARGET_STATUSES] } },
    });
    if (busy > 0)
      throw new PreconditionFailedError('The tenant has run targets pending or running; cancel them first');
    // Stop new runs from selecting it before its data goes.
    await db.tenant.update({ where: { tenantId: tenant.tenantId }, data: { status: 'INACTIVE' } });
    const databases = await db.tenantDatabase.findMany({ where: { tenantId: tenant.tenantId } });
    for (const database of databases) {
      await dropTenantData(database);
      await db.tenantDatabase.update({
        where: { id: database.id },
        data: { status: 'INACTIVE', schemaVersion: null, lastError: null },
      });
    }
    logger.info('tenant data dropped', { tenantId: tenant.tenantId, name: tenant.name });
    return db.tenant.update({
      where: { tenantId: tenant.tenantId },
      data: { status: 'INACTIVE', deletedAt: new Date() },
    });
  }

  /** Catalog files the tenant database has not applied yet, read from its own ledger. */
  async function pendingMigrations(database: TenantDatabase | undefined): Promise<readonly MigrationFile[]> {
    if (!database) return [];
    const pool = await ledgerPool(database);
    if (!pool) return catalog.files;
    return (await getStatus(pool, ledgerTargetOf(database), catalog)).pending;
  }

  /** The tenant database's ledger, oldest first, each row checked against the catalog. */
  async function migrationHistory(database: TenantDatabase | undefined): Promise<readonly HistoryEntry[]> {
    if (!database) return [];
    const pool = await ledgerPool(database);
    if (!pool) return [];
    return getHistory(pool, ledgerTargetOf(database), catalog);
  }

  async function requireTenant(tenantId: string): Promise<Tenant> {
    const tenant = await db.tenant.findUnique({ where: { tenantId } });
    if (!tenant) throw new NotFoundError('Tenant not found');
    return tenant;
  }

  // null when the tenant database does not exist (not provisioned yet, or dropped).
  async function ledgerPool(database: TenantDatabase): Promise<Pool | null> {
    const pool = tenantPools.poolFor(secretBox.open(database.connectionStringEncrypted));
    if (database.isolation !== 'DATABASE') return pool;
    try {
      await pool.query('SELECT 1');
      return pool;
    } catch (error) {
      if ((error as { code?: unknown }).code === '3D000') return null;
      throw error;
    }
  }

  async function dropTenantData(database: TenantDatabase): Promise<void> {
    const connectionString = secretBox.open(database.connectionStringEncrypted);
    if (database.isolation === 'DATABASE') {
      if (!isTenantObjectName(database.databaseName)) {
        throw new PreconditionFailedError(
          `Refusing to drop database "${database.databaseName}": not a tenant database`,
        );
      }
      const quoted = quoteDatabase(database.databaseName);
      await withConnection(withDatabase(connectionString, 'postgres'), (client) =>
        client.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`),
      );
      return;
    }
    const schema = database.schemaName ?? '';
    if (!isTenantObjectName(schema)) {
      throw new PreconditionFailedError(`Refusing to drop schema "${schema}": not a tenant schema`);
    }
    await tenantPools.poolFor(connectionString).query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
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
