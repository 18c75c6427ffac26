import { builder } from '../builder.js';
import { publicTargetStatus, TargetStatusEnum } from './enums.js';

export const MigrationRunTargetRef = builder.prismaNode('MigrationRunTarget', {
  id: { field: 'id' },
  fields: (t) => ({
    tenant: t.relation('tenant'),
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
