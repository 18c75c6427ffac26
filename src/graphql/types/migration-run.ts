import { mayActOnRun, roleForRunKind } from '../../auth/run-roles.js';
import type { ApiRole } from '../../auth/roles.js';
import { selectsOnlyColumns } from '../../db/control-plane-rows.js';
import type { Prisma } from '../../generated/prisma/client.js';
import type { RunKind } from '../../generated/prisma/enums.js';
import { ValidationError as AppValidationError } from '../../errors.js';
import type { RunProgress } from '../../pubsub/run-events.js';
import type { TenantSelector } from '../../runs/types.js';
import { progressOfRun } from '../../runs/run-decisions.js';
import { builder, forbiddenError } from '../builder.js';
import type { GraphqlContext } from '../context.js';
import { connectionCost } from '../cost.js';
import { checkedPageSize, tryDecodeId } from '../ids.js';
import { actorOf, cleanQuery } from '../prisma-query.js';
import {
  RunKindEnum,
  RunStatusEnum,
  storedTargetStatuses,
  TargetStatusEnum,
  TenantEnvironmentEnum,
  TenantStatusEnum,
  TransactionModeEnum,
} from './enums.js';
import { NotFoundError, PreconditionFailedError, ValidationError } from './errors.js';
import './catalog-release.js';
import './migration-run-target.js';
import { StampTenantSuccess } from './tenant.js';

const RUNS_PAGE = { defaultSize: 20, maxSize: 100 } as const;
const TARGETS_PAGE = { defaultSize: 50, maxSize: 500 } as const;

/** A run's progress from its counters (queued targets count as pending). */
export const progressOf = progressOfRun;

export const RunProgressRef = builder.objectRef<RunProgress>('RunProgress').implement({
  fields: (t) => ({
    total: t.exposeInt('total'),
    pending: t.exposeInt('pending'),
    running: t.exposeInt('running'),
    succeeded: t.exposeInt('succeeded'),
    failed: t.exposeInt('failed'),
    skipped: t.exposeInt('skipped'),
    cancelled: t.exposeInt('cancelled'),
  }),
});

export const MigrationRunRef = builder.prismaNode('MigrationRun', {
  id: { field: 'id' },
  fields: (t) => ({
    kind: t.expose('kind', { type: RunKindEnum }),
    status: t.expose('status', { type: RunStatusEnum }),
    targetVersion: t.exposeString('targetVersion', { nullable: true }),
    dryRun: t.exposeBoolean('dryRun'),
    concurrency: t.exposeInt('concurrency'),
    maxFailures: t.exposeInt('maxFailures', { nullable: true }),
    canarySize: t.exposeInt('canarySize', { nullable: true }),
    transactionMode: t.expose('transactionMode', { type: TransactionModeEnum }),
    requestedBy: t.exposeString('requestedBy', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    progress: t.field({ type: RunProgressRef, resolve: (run) => progressOf(run) }),
    catalog: t.prismaField({
      type: 'CatalogRelease',
      description: 'The catalog release the run executes (runs from before releases: the API process’s own)',
      select: { catalogReleaseId: true },
      resolve: (query, run, _args, context) =>
        context.db.catalogRelease.findUniqueOrThrow({
          ...cleanQuery(query),
          where: { id: run.catalogReleaseId ?? context.services.catalogs.local.releaseId },
        }),
    }),
    targets: t.relatedConnection(
      'targets',
      {
        cursor: 'id',
        args: { status: t.arg({ type: [TargetStatusEnum], required: false }) },
        totalCount: true,
        defaultSize: TARGETS_PAGE.defaultSize,
        maxSize: checkedPageSize(TARGETS_PAGE.maxSize),
        complexity: connectionCost(TARGETS_PAGE.defaultSize, TARGETS_PAGE.maxSize),
        query: (args) => ({
          where: args.status?.length ? { status: { in: storedTargetStatuses(args.status) } } : {},
          orderBy: [{ position: 'asc' }, { id: 'asc' }],
        }),
      },
      { name: 'MigrationRunTargetConnection' },
      { name: 'MigrationRunTargetEdge' },
    ),
  }),
});

builder.queryField('migrationRuns', (t) =>
  t.prismaConnection(
    {
      type: 'MigrationRun',
      cursor: 'id',
      description: 'Runs, newest first',
      authScopes: { viewer: true },
      args: { status: t.arg({ type: [RunStatusEnum], required: false }) },
      defaultSize: RUNS_PAGE.defaultSize,
      maxSize: checkedPageSize(RUNS_PAGE.maxSize),
      complexity: connectionCost(RUNS_PAGE.defaultSize, RUNS_PAGE.maxSize),
      resolve: (query, _root, args, context) =>
        context.db.migrationRun.findMany({
          ...cleanQuery(query),
          where: runWhere(args.status),
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        }),
      totalCount: (_connection, args, context) =>
        context.db.migrationRun.count({ where: runWhere(args.status) }),
    },
    { name: 'MigrationRunConnection' },
    { name: 'MigrationRunEdge' },
  ),
);

builder.queryField('migrationRun', (t) =>
  t.prismaField({
    type: 'MigrationRun',
    nullable: true,
    authScopes: { viewer: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, args, context) => {
      const id = tryDecodeId(args.id, 'MigrationRun');
      if (!id) return null;
      // Progress polling selects only columns: one prepared statement instead of a Prisma query.
      if (selectsOnlyColumns(query)) return context.services.runReader.findRun(id);
      return context.db.migrationRun.findUnique({ ...cleanQuery(query), where: { id } });
    },
  }),
);

export const TenantSelectorInput = builder.inputType('TenantSelector', {
  description: 'Which tenants a run covers; status defaults to [ACTIVE]; deleted tenants never',
  fields: (t) => ({
    ids: t.idList({ required: false }),
    environment: t.field({ type: [TenantEnvironmentEnum], required: false }),
    status: t.field({ type: [TenantStatusEnum], required: false }),
  }),
});

const StartMigrationRunInput = builder.inputType('StartMigrationRunInput', {
  fields: (t) => ({
    targetVersion: t.string({ required: false, description: 'Default: the latest version on disk' }),
    tenants: t.field({
      type: TenantSelectorInput,
      required: false,
      description: 'Default: every ACTIVE tenant',
    }),
    dryRun: t.boolean({ required: false, defaultValue: false }),
    concurrency: t.int({ required: false }),
    canarySize: t.int({ required: false }),
    maxFailures: t.int({ required: false }),
    transactionMode: t.field({ type: TransactionModeEnum, required: false, defaultValue: 'PER_TENANT' }),
    catalogChecksum: t.string({
      required: false,
      description:
        'The catalog release to run (its checksum); default: the release of the API process that takes the request',
    }),
    allowDrift: t.boolean({
      required: false,
      defaultValue: false,
      description: 'Default: drifted tenants are not touched (their targets fail at once with "drift: …")',
    }),
    backup: t.boolean({
      required: false,
      defaultValue: false,
      description:
        'Each target backs its tenant up first; a failed backup fails the target, tenant untouched',
    }),
  }),
});

const StartRollbackInput = builder.inputType('StartRollbackInput', {
  fields: (t) => ({
    targetVersion: t.string({ required: true }),
    tenants: t.field({ type: TenantSelectorInput, required: false }),
    concurrency: t.int({ required: false }),
    allowDrift: t.boolean({ required: false, defaultValue: false }),
    backup: t.boolean({
      required: false,
      defaultValue: false,
      description: 'Each target backs its tenant up first',
    }),
  }),
});

const RunIdInput = builder.inputType('RunIdInput', { fields: (t) => ({ id: t.id({ required: true }) }) });

const StampTenantInput = builder.inputType('StampTenantInput', {
  fields: (t) => ({ tenantId: t.id({ required: true }), version: t.string({ required: true }) }),
});

interface RunPayload {
  readonly runId: string;
}

/** A mutation's success type holding the run it started. */
export function runSuccess(name: string) {
  return builder.objectRef<RunPayload>(name).implement({
    fields: (t) => ({
      run: t.prismaField({
        type: 'MigrationRun',
        resolve: (query, payload, _args, context) =>
          context.db.migrationRun.findUniqueOrThrow({ ...cleanQuery(query), where: { id: payload.runId } }),
      }),
    }),
  });
}

const StartMigrationRunSuccess = runSuccess('StartMigrationRunSuccess');
const StartRollbackSuccess = runSuccess('StartRollbackSuccess');
const CancelMigrationRunSuccess = runSuccess('CancelMigrationRunSuccess');
const RetryMigrationRunSuccess = runSuccess('RetryMigrationRunSuccess');

builder.mutationField('startMigrationRun', (t) =>
  t.field({
    type: StartMigrationRunSuccess,
    authScopes: scopesForRunKind('MIGRATE'),
    args: { input: t.arg({ type: StartMigrationRunInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError, PreconditionFailedError],
      union: { name: 'StartMigrationRunResult' },
    },
    resolve: async (_root, { input }, context) => {
      const run = await context.services.runs.startMigrationRun(
        { ...input, tenants: selectorOf(input.tenants) },
        actorOf(context),
      );
      return { runId: run.id };
    },
  }),
);

builder.mutationField('startRollback', (t) =>
  t.field({
    type: StartRollbackSuccess,
    description: 'ADMIN. PRECONDITION_FAILED when a step has no down file',
    authScopes: scopesForRunKind('ROLLBACK'),
    args: { input: t.arg({ type: StartRollbackInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError, PreconditionFailedError],
      union: { name: 'StartRollbackResult' },
    },
    resolve: async (_root, { input }, context) => {
      const run = await context.services.runs.startRollback(
        { ...input, tenants: selectorOf(input.tenants) },
        actorOf(context),
      );
      return { runId: run.id };
    },
  }),
);

builder.mutationField('cancelMigrationRun', (t) =>
  t.field({
    type: CancelMigrationRunSuccess,
    description: 'Needs the role that starting a run of its kind needs (ADMIN for a ROLLBACK)',
    authScopes: { operator: true },
    args: { input: t.arg({ type: RunIdInput, required: true }) },
    errors: { types: [NotFoundError, PreconditionFailedError], union: { name: 'CancelMigrationRunResult' } },
    resolve: async (_root, { input }, context) => {
      const runId = await authorizedRunId(context, input.id);
      const run = await context.services.runs.cancelRun(runId, actorOf(context));
      return { runId: run.id };
    },
  }),
);

builder.mutationField('retryMigrationRun', (t) =>
  t.field({
    type: RetryMigrationRunSuccess,
    description:
      'Re-queues the FAILED and CANCELLED targets of that run. Needs the role that starting a run of its kind needs (ADMIN for a ROLLBACK)',
    authScopes: { operator: true },
    args: { input: t.arg({ type: RunIdInput, required: true }) },
    errors: { types: [NotFoundError, PreconditionFailedError], union: { name: 'RetryMigrationRunResult' } },
    resolve: async (_root, { input }, context) => {
      const runId = await authorizedRunId(context, input.id);
      const run = await context.services.runs.retryRun(runId, actorOf(context));
      return { runId: run.id };
    },
  }),
);

builder.mutationField('stampTenant', (t) =>
  t.field({
    type: StampTenantSuccess,
    description: "ADMIN. Records a version in the tenant's ledger; runs nothing",
    authScopes: { admin: true },
    args: { input: t.arg({ type: StampTenantInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError, PreconditionFailedError],
      union: { name: 'StampTenantResult' },
    },
    resolve: async (_root, { input }, context) => {
      const tenantId = tryDecodeId(input.tenantId, 'Tenant');
      if (!tenantId) throw new NotFoundError('Tenant not found');
      const tenant = await context.services.runs.stampTenant(tenantId, input.version, actorOf(context));
      return { tenantId: tenant.tenantId };
    },
  }),
);

const ROLE_SCOPES: Readonly<Record<ApiRole, 'viewer' | 'operator' | 'admin'>> = {
  VIEWER: 'viewer',
  OPERATOR: 'operator',
  ADMIN: 'admin',
};

/** The auth scopes of a mutation that starts a run of `kind` (see RUN_KIND_ROLES). */
function scopesForRunKind(kind: RunKind): { viewer?: boolean; operator?: boolean; admin?: boolean } {
  return { [ROLE_SCOPES[roleForRunKind(kind)]]: true };
}

/**
 * The run's id once the caller is known to hold the role its kind needs; FORBIDDEN otherwise,
 * before anything is changed. A run's kind never changes, so reading it first is race-free.
 */
async function authorizedRunId(context: GraphqlContext, globalId: string | number): Promise<string> {
  const id = runIdOf(globalId);
  const run = await context.db.migrationRun.findUnique({ where: { id }, select: { kind: true } });
  if (!run) throw new NotFoundError('Migration run not found');
  if (!mayActOnRun(context.principal?.role, run.kind)) {
    throw forbiddenError(
      `Acting on a ${run.kind} run needs the ${roleForRunKind(run.kind)} role, as starting one does`,
    );
  }
  return id;
}

function runIdOf(globalId: string | number): string {
  const id = tryDecodeId(globalId, 'MigrationRun');
  if (!id) throw new NotFoundError('Migration run not found');
  return id;
}

/** A GraphQL TenantSelector with its global ids decoded; ValidationError for an id of another type. */
export function selectorOf(
  selector:
    | {
        ids?: readonly (string | number)[] | null;
        environment?: TenantSelector['environment'];
        status?: TenantSelector['status'];
      }
    | null
    | undefined,
): TenantSelector | null {
  if (!selector) return null;
  const ids = selector.ids?.map((globalId) => {
    const id = tryDecodeId(globalId, 'Tenant');
    if (!id) throw new AppValidationError(`"${String(globalId)}" is not a tenant id`, 'tenants.ids');
    return id;
  });
  return { ids: ids ?? null, environment: selector.environment ?? null, status: selector.status ?? null };
}

function runWhere(status: readonly string[] | null | undefined): Prisma.MigrationRunWhereInput {
  return status?.length ? { status: { in: status as Prisma.EnumRunStatusFilter['in'] } } : {};
}
