/**
 * The contract between the API layer and the run machinery (src/runs, src/queue). The GraphQL
 * resolvers and the tenant service call only these functions; expected failures are thrown as
 * the AppErrors of src/errors.ts (ValidationError, NotFoundError, PreconditionFailedError,
 * ConflictError), which the API turns into members of the result unions.
 */
import type { MigrationRun, Tenant } from '../generated/prisma/client.js';
import type { IsolationMode, TenantEnvironment, TenantStatus } from '../generated/prisma/enums.js';
import type { ControlPlaneTx } from '../db/control-plane.js';
import type { TransactionMode } from '../migrations/types.js';

/** Which tenants a run covers. Omitted `status` means ACTIVE only. Deleted tenants never. */
export interface TenantSelector {
  /** Tenant UUIDs (tenant_id), already decoded from global ids by the caller. */
  readonly ids?: readonly string[] | null;
  readonly environment?: readonly TenantEnvironment[] | null;
  readonly status?: readonly TenantStatus[] | null;
}

export interface StartMigrationRunRequest {
  /** Default: the latest version of the tenant catalog. */
  readonly targetVersion?: string | null;
  readonly tenants?: TenantSelector | null;
  readonly dryRun?: boolean | null;
  /** Most targets of this run queued or running at once. Default: DEFAULT_RUN_CONCURRENCY. */
  readonly concurrency?: number | null;
  readonly canarySize?: number | null;
  readonly maxFailures?: number | null;
  readonly transactionMode?: TransactionMode | null;
  /** The catalog release the run executes; default: the release of the API process that takes the request. */
  readonly catalogChecksum?: string | null;
  /** Migrate tenants whose last fingerprint differs from their version's too (default false). */
  readonly allowDrift?: boolean | null;
  /** Each target backs its tenant up first; a failed backup fails the target, tenant untouched. */
  readonly backup?: boolean | null;
}

export interface StartRollbackRequest {
  readonly targetVersion: string;
  readonly tenants?: TenantSelector | null;
  readonly concurrency?: number | null;
  readonly allowDrift?: boolean | null;
  /** Each target backs its tenant up first. */
  readonly backup?: boolean | null;
}

/**
 * An ADOPT run: over tenants just registered (PENDING) for existing schemas, or, a dry run, over
 * the schemas themselves on a server, registering nothing (its targets have no tenant).
 */
export type StartAdoptRunRequest =
  | {
      readonly tenantIds: readonly string[];
      /** What the worker's adoption reads: the history source and versionMap (stored on the run). */
      readonly options: unknown;
      readonly dryRun: false;
      readonly concurrency?: number | null;
    }
  | {
      /** Existing schemas of the database a server's URL names. */
      readonly schemas: { readonly serverId: string; readonly names: readonly string[] };
      readonly options: unknown;
      readonly dryRun: true;
      readonly concurrency?: number | null;
    };

/** A VERIFY run: each selected tenant's structure against its version's expected one. */
export interface StartVerifyRunRequest {
  readonly tenants?: TenantSelector | null;
  readonly concurrency?: number | null;
}

export interface RestoreRequest {
  readonly backupId: string;
  /** The tenant's name, typed again: a restore replaces the tenant's data. */
  readonly confirmName: string;
}

export interface ProvisionRequest {
  readonly tenantId: string;
  readonly tenantDatabaseId: string;
}

/** Who asked: recorded as `requested_by` and in the audit log. */
export interface Actor {
  readonly name: string;
}

export interface RunService {
  /** Validates, resolves the selector, inserts the run and its targets in one transaction, queues the first wave. */
  startMigrationRun(request: StartMigrationRunRequest, actor: Actor): Promise<MigrationRun>;
  /** Like startMigrationRun with kind ROLLBACK; PreconditionFailedError when a step has no down file. */
  startRollback(request: StartRollbackRequest, actor: Actor): Promise<MigrationRun>;
  /** A read-only VERIFY run (a dry run): SUCCEEDED where the structure matches, FAILED with the first differences. */
  startVerifyRun(request: StartVerifyRunRequest, actor: Actor): Promise<MigrationRun>;
  /**
   * An ADOPT run, one target per registered tenant (or, a dry run, per unregistered schema): the
   * worker decides each version and stamps the ledger (a dry run only reports it).
   */
  startAdoptRun(request: StartAdoptRunRequest, actor: Actor): Promise<MigrationRun>;
  /** A BACKUP run of one tenant (not deleted): NotFoundError, ConflictError while another run holds it. */
  startBackupRun(tenantId: string, actor: Actor): Promise<MigrationRun>;
  /**
   * A RESTORE run of one tenant database from a backup (a deleted tenant comes back). NotFoundError
   * for an unknown backup; ValidationError when confirmName is not the tenant's name;
   * PreconditionFailedError when the file changed; ConflictError while another run holds it.
   */
  startRestoreRun(request: RestoreRequest, actor: Actor): Promise<MigrationRun>;
  /** Stops scheduling; PENDING targets become CANCELLED; running ones finish. PreconditionFailedError if already ended. */
  cancelRun(runId: string, actor: Actor): Promise<MigrationRun>;
  /** Re-queues the FAILED and CANCELLED targets of an ended run. PreconditionFailedError if none or still running. */
  retryRun(runId: string, actor: Actor): Promise<MigrationRun>;
  /** Records `version` in the tenant's ledger without running SQL (ADMIN). */
  stampTenant(tenantId: string, version: string, actor: Actor): Promise<Tenant>;
  /**
   * Inserts a PROVISION run with one target inside the caller's transaction (the tenant and its
   * database row were inserted in the same transaction). Call `dispatch` after the commit.
   */
  createProvisionRun(tx: ControlPlaneTx, request: ProvisionRequest, actor: Actor): Promise<MigrationRun>;
  /** Hands a committed run's first wave to the queue; safe to call twice. */
  dispatch(runId: string): Promise<void>;
}

export type { IsolationMode };
