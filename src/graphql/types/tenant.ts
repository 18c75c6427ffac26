import { GraphQLError } from 'graphql';
import { selectsOnlyColumns } from '../../db/control-plane-rows.js';
import type { MigrationRun, Prisma, Tenant } from '../../generated/prisma/client.js';
import { forbiddenError, builder } from '../builder.js';
import { connectionCost, SMALL_LIST, TENANT_DATABASE_READ } from '../cost.js';
import { checkedPageSize, tryDecodeId } from '../ids.js';
import { actorOf, cleanQuery } from '../prisma-query.js';
import { hasRole } from '../../auth/roles.js';
import { TenantReadTimeoutError } from '../../tenants/tenant-service.js';
import { IsolationModeEnum, TenantEnvironmentEnum, TenantStatusEnum } from './enums.js';
import { ConflictError, NotFoundError, PreconditionFailedError, ValidationError } from './errors.js';
import { AppliedMigrationRef, MigrationRef } from './migration.js';
import './tenant-database.js';

const TENANTS_PAGE = { defaultSize: 20, maxSize: 100 } as const;

// The first database of a tenant is its primary one; every field that needs it asks the same way,
// so the prisma plugin merges them into one relation load.
const DATABASES_QUERY = {
  orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
} satisfies Prisma.TenantDatabaseFindManyArgs;

export const TenantRef = builder.prismaNode('Tenant', {
  id: { field: 'tenantId' },
  fields: (t) => ({
    tenantId: t.exposeString('tenantId', { description: 'The UUID primary key' }),
    name: t.exposeString('name'),
    environment: t.expose('environment', { type: TenantEnvironmentEnum }),
    status: t.expose('status', { type: TenantStatusEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    deletedAt: t.expose('deletedAt', { type: 'DateTime', nullable: true }),
    databases: t.relation('databases', { query: DATABASES_QUERY, complexity: SMALL_LIST }),
    schemaVersion: t.string({
      nullable: true,
      description: 'Highest applied version on its primary database (cached by the control plane)',
      select: { databases: DATABASES_QUERY },
      resolve: (tenant) => tenant.databases[0]?.schemaVersion ?? null,
    }),
    pendingMigrations: t.field({
      type: [MigrationRef],
      description: "Catalog files not applied yet, read from the tenant's own ledger",
      select: { databases: DATABASES_QUERY },
      complexity: TENANT_DATABASE_READ,
      resolve: (tenant, _args, context) =>
        readingTenantDatabase(() => context.services.tenants.pendingMigrations(tenant.databases[0])),
    }),
    migrationHistory: t.field({
      type: [AppliedMigrationRef],
      description: 'Read from the tenant database itself',
      select: { databases: DATABASES_QUERY },
      complexity: TENANT_DATABASE_READ,
      resolve: (tenant, _args, context) =>
        readingTenantDatabase(() => context.services.tenants.migrationHistory(tenant.databases[0])),
    }),
  }),
});

export const TenantFilter = builder.inputType('TenantFilter', {
  fields: (t) => ({
    status: t.field({ type: [TenantStatusEnum], required: false }),
    environment: t.field({ type: [TenantEnvironmentEnum], required: false }),
    nameContains: t.string({ required: false }),
    includeDeleted: t.boolean({ required: false, defaultValue: false }),
  }),
});

builder.queryField('tenants', (t) =>
  t.prismaConnection(
    {
      type: 'Tenant',
      cursor: 'tenantId',
      authScopes: { viewer: true },
      args: { filter: t.arg({ type: TenantFilter, required: false }) },
      defaultSize: TENANTS_PAGE.defaultSize,
      maxSize: checkedPageSize(TENANTS_PAGE.maxSize),
      complexity: connectionCost(TENANTS_PAGE.defaultSize, TENANTS_PAGE.maxSize),
      resolve: (query, _root, args, context) =>
        context.db.tenant.findMany({
          ...cleanQuery(query),
          where: tenantWhere(args.filter),
          orderBy: [{ name: 'asc' }, { tenantId: 'asc' }],
        }),
      totalCount: (_connection, args, context) =>
        context.db.tenant.count({ where: tenantWhere(args.filter) }),
    },
    { name: 'TenantConnection' },
    { name: 'TenantEdge' },
  ),
);

builder.queryField('tenant', (t) =>
  t.prismaField({
    type: 'Tenant',
    nullable: true,
    description: 'One tenant by global id or by name (deleted tenants included)',
    authScopes: { viewer: true },
    args: { id: t.arg.id({ required: false }), name: t.arg.string({ required: false }) },
    resolve: (query, _root, args, context) => {
      if (args.id != null) {
        const tenantId = tryDecodeId(args.id, 'Tenant');
        return tenantId ? context.db.tenant.findUnique({ ...cleanQuery(query), where: { tenantId } }) : null;
      }
      if (args.name != null)
        return context.db.tenant.findUnique({ ...cleanQuery(query), where: { name: args.name } });
      return null;
    },
  }),
);

interface CreateTenantPayload {
  readonly tenantId: string;
  readonly provisioningRunId: string;
  /** The rows as createTenant inserted them: they answer a selection of columns without a query. */
  readonly tenant: Tenant;
  readonly provisioning: MigrationRun;
}

const CreateTenantSuccess = builder.objectRef<CreateTenantPayload>('CreateTenantSuccess').implement({
  fields: (t) => ({
    tenant: t.prismaField({
      type: 'Tenant',
      resolve: (query, payload, _args, context) =>
        selectsOnlyColumns(query)
          ? payload.tenant
          : context.db.tenant.findUniqueOrThrow({
              ...cleanQuery(query),
              where: { tenantId: payload.tenantId },
            }),
    }),
    provisioning: t.prismaField({
      type: 'MigrationRun',
      resolve: (query, payload, _args, context) =>
        selectsOnlyColumns(query)
          ? payload.provisioning
          : context.db.migrationRun.findUniqueOrThrow({
              ...cleanQuery(query),
              where: { id: payload.provisioningRunId },
            }),
    }),
  }),
});

/** The payload of mutations that return one tenant. */
export interface TenantPayload {
  readonly tenantId: string;
}

function tenantSuccess(name: string) {
  return builder.objectRef<TenantPayload>(name).implement({
    fields: (t) => ({
      tenant: t.prismaField({
        type: 'Tenant',
        resolve: (query, payload, _args, context) =>
          context.db.tenant.findUniqueOrThrow({
            ...cleanQuery(query),
            where: { tenantId: payload.tenantId },
          }),
      }),
    }),
  });
}

const UpdateTenantSuccess = tenantSuccess('UpdateTenantSuccess');
const SetTenantStatusSuccess = tenantSuccess('SetTenantStatusSuccess');
const DeleteTenantSuccess = tenantSuccess('DeleteTenantSuccess');
/** Shared with stampTenant (migration-run.ts). */
export const StampTenantSuccess = tenantSuccess('StampTenantSuccess');

const CreateTenantInput = builder.inputType('CreateTenantInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    environment: t.field({ type: TenantEnvironmentEnum, required: false, defaultValue: 'DEVELOPMENT' }),
    isolation: t.field({ type: IsolationModeEnum, required: false, defaultValue: 'SCHEMA' }),
    server: t.id({
      required: false,
      description: 'The database server; default: the accepting server with the fewest tenants',
    }),
  }),
});

const UpdateTenantInput = builder.inputType('UpdateTenantInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string({ required: false }),
    environment: t.field({ type: TenantEnvironmentEnum, required: false }),
  }),
});

const SetTenantStatusInput = builder.inputType('SetTenantStatusInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    status: t.field({ type: TenantStatusEnum, required: true }),
  }),
});

const DeleteTenantInput = builder.inputType('DeleteTenantInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    confirmName: t.string({ required: true }),
    dropData: t.boolean({ required: false, defaultValue: false }),
  }),
});

builder.mutationField('createTenant', (t) =>
  t.field({
    type: CreateTenantSuccess,
    description: 'Creates a tenant (PENDING) and starts its provisioning run',
    authScopes: { operator: true },
    args: { input: t.arg({ type: CreateTenantInput, required: true }) },
    errors: { types: [ValidationError, ConflictError], union: { name: 'CreateTenantResult' } },
    resolve: async (_root, { input }, context) => {
      const serverId = input.server == null ? null : tryDecodeId(input.server, 'DatabaseServer');
      if (input.server != null && !serverId) throw new ValidationError('No such database server', 'server');
      const { tenant, provisioning } = await context.services.tenants.createTenant(
        { ...input, serverId },
        actorOf(context),
      );
      return { tenantId: tenant.tenantId, provisioningRunId: provisioning.id, tenant, provisioning };
    },
  }),
);

builder.mutationField('updateTenant', (t) =>
  t.field({
    type: UpdateTenantSuccess,
    authScopes: { operator: true },
    args: { input: t.arg({ type: UpdateTenantInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], union: { name: 'UpdateTenantResult' } },
    resolve: async (_root, { input }, context) => {
      const tenant = await context.services.tenants.updateTenant({ ...input, id: tenantIdOf(input.id) });
      return { tenantId: tenant.tenantId };
    },
  }),
);

builder.mutationField('setTenantStatus', (t) =>
  t.field({
    type: SetTenantStatusSuccess,
    authScopes: { operator: true },
    args: { input: t.arg({ type: SetTenantStatusInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError], union: { name: 'SetTenantStatusResult' } },
    resolve: async (_root, { input }, context) => {
      const tenant = await context.services.tenants.setTenantStatus({
        id: tenantIdOf(input.id),
        status: input.status,
      });
      return { tenantId: tenant.tenantId };
    },
  }),
);

builder.mutationField('deleteTenant', (t) =>
  t.field({
    type: DeleteTenantSuccess,
    description:
      'Deactivates a tenant; with dropData (ADMIN) marks it deleted and drops its schema or database (only one this deployment created; again to finish a delete whose drop failed)',
    authScopes: { operator: true },
    args: { input: t.arg({ type: DeleteTenantInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError, ConflictError, PreconditionFailedError],
      union: { name: 'DeleteTenantResult' },
    },
    resolve: async (_root, { input }, context) => {
      if (input.dropData && !hasRole(context.principal?.role, 'ADMIN')) {
        throw forbiddenError('Dropping tenant data requires the ADMIN role');
      }
      const tenant = await context.services.tenants.deleteTenant({ ...input, id: tenantIdOf(input.id) });
      return { tenantId: tenant.tenantId };
    },
  }),
);

// A malformed or foreign id names no tenant: reported as NotFoundError, like an unknown one.
function tenantIdOf(globalId: string | number): string {
  const tenantId = tryDecodeId(globalId, 'Tenant');
  if (!tenantId) throw new NotFoundError('Tenant not found');
  return tenantId;
}

function tenantWhere(
  filter:
    | {
        status?: readonly string[] | null;
        environment?: readonly string[] | null;
        nameContains?: string | null;
        includeDeleted?: boolean | null;
      }
    | null
    | undefined,
): Prisma.TenantWhereInput {
  const where: Prisma.TenantWhereInput = {};
  if (!filter?.includeDeleted) where.deletedAt = null;
  if (filter?.status?.length) where.status = { in: filter.status as Prisma.EnumTenantStatusFilter['in'] };
  if (filter?.environment?.length) {
    where.environment = { in: filter.environment as Prisma.EnumTenantEnvironmentFilter['in'] };
  }
  if (filter?.nameContains) {
    where.name = { contains: escapeLikePattern(filter.nameContains), mode: 'insensitive' };
  }
  return where;
}

/** `text` as a literal inside a LIKE pattern: Prisma's `contains` passes `%`, `_` and `\` through. */
export function escapeLikePattern(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

/** Runs a read of a tenant's own database; one the read timeout ended is a clear error, not a masked one. */
async function readingTenantDatabase<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (!(error instanceof TenantReadTimeoutError)) throw error;
    throw new GraphQLError(error.message, { extensions: { code: error.code } });
  }
}
