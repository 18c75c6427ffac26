import { tenantNameOf, type StoredAdoptOptions } from '../../fingerprints/adoption-service.js';
import type { Tenant, TenantDatabase } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';
import { publicTargetStatus, TargetStatusEnum } from './enums.js';
import { TenantRef } from './tenant.js';

export const MigrationRunTargetRef = builder.prismaNode('MigrationRunTarget', {
  id: { field: 'id' },
  fields: (t) => ({
    tenant: t.field({
      type: TenantRef,
      description:
        "The target's tenant. A dry-run ADOPT target registers nothing: its tenant is the one adoption would register, not stored (its id is the target's, it has no databases)",
      select: (_args, _context, nestedSelection) => ({
        tenant: nestedSelection(true),
        schemaName: true,
        createdAt: true,
        run: { select: { adoptOptions: true } },
      }),
      resolve: (target) => target.tenant ?? wouldBeTenant(target),
    }),
    schemaName: t.exposeString('schemaName', {
      nullable: true,
      description: 'A dry-run ADOPT target: the existing schema it reads (no tenant is registered for it)',
    }),
    status: t.field({ type: TargetStatusEnum, resolve: (target) => publicTargetStatus(target.status) }),
    fromVersion: t.exposeString('fromVersion', { nullable: true }),
    toVersion: t.exposeString('toVersion', { nullable: true }),
    appliedVersions: t.exposeStringList('appliedVersions'),
    plannedSql: t.exposeString('plannedSql', { nullable: true }),
    error: t.exposeString('error', { nullable: true }),
    errorCode: t.exposeString('errorCode', {
      nullable: true,
      description: 'SQLSTATE of the failure, when known',
    }),
    attempts: t.exposeInt('attempts'),
    canary: t.exposeBoolean('canary'),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    durationMs: t.exposeInt('durationMs', { nullable: true }),
  }),
});

/** The tenant adopting an unregistered schema would register, as a dry-run ADOPT run reports it. */
function wouldBeTenant(target: {
  readonly id: string;
  readonly schemaName: string | null;
  readonly createdAt: Date;
  readonly run: { readonly adoptOptions: unknown };
}): Tenant & { databases: TenantDatabase[] } {
  const options = (target.run.adoptOptions ?? {}) as Partial<StoredAdoptOptions>;
  const schema = target.schemaName ?? '';
  return {
    tenantId: target.id,
    name: tenantNameOf(schema, options.namePrefix),
    environment: options.environment ?? 'DEVELOPMENT',
    status: 'PENDING',
    createdAt: target.createdAt,
    updatedAt: target.createdAt,
    deletedAt: null,
    databases: [],
  };
}
