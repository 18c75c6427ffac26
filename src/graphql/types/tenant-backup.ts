/**
 * TenantBackup, Tenant.backups and the two mutations that start BACKUP and RESTORE runs (issue 15,
 * contract part backups.graphql). Both are runs like any other: same progress, events and
 * subscriptions.
 */
import {
  ConflictError,
  NotFoundError as AppNotFoundError,
  PreconditionFailedError as AppPrecondition,
} from '../../errors.js';
import { builder } from '../builder.js';
import { SMALL_LIST } from '../cost.js';
import { tryDecodeId } from '../ids.js';
import { actorOf, cleanQuery } from '../prisma-query.js';
import { NotFoundError, PreconditionFailedError, ValidationError } from './errors.js';
import './tenant.js';

builder.prismaNode('TenantBackup', {
  id: { field: 'id' },
  fields: (t) => ({
    tenant: t.relation('tenant'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    sizeBytes: t.float({ select: { sizeBytes: true }, resolve: (backup) => Number(backup.sizeBytes) }),
    schemaVersion: t.exposeString('schemaVersion', { nullable: true }),
    reason: t.exposeString('reason', { description: 'e.g. "before run <id>", "before delete", "manual"' }),
  }),
});

builder.prismaObjectField('Tenant', 'backups', (t) =>
  t.relation('backups', {
    description: 'Backups whose files are kept, newest first',
    query: { where: { deletedAt: null }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] },
    complexity: SMALL_LIST,
  }),
);

const BackupTenantInput = builder.inputType('BackupTenantInput', {
  fields: (t) => ({ tenantId: t.id({ required: true }) }),
});

const RestoreTenantBackupInput = builder.inputType('RestoreTenantBackupInput', {
  fields: (t) => ({ backupId: t.id({ required: true }), confirmName: t.string({ required: true }) }),
});

interface RunPayload {
  readonly runId: string;
}

function runSuccess(name: string) {
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

builder.mutationField('backupTenant', (t) =>
  t.field({
    type: runSuccess('BackupTenantSuccess'),
    description: 'OPERATOR. Starts a BACKUP run of one tenant',
    authScopes: { operator: true },
    args: { input: t.arg({ type: BackupTenantInput, required: true }) },
    errors: { types: [NotFoundError, PreconditionFailedError], union: { name: 'BackupTenantResult' } },
    resolve: async (_root, { input }, context) => {
      const tenantId = tryDecodeId(input.tenantId, 'Tenant');
      if (!tenantId) throw new AppNotFoundError('Tenant not found');
      const run = await busyAsPrecondition(() =>
        context.services.runs.startBackupRun(tenantId, actorOf(context)),
      );
      return { runId: run.id };
    },
  }),
);

builder.mutationField('restoreTenantBackup', (t) =>
  t.field({
    type: runSuccess('RestoreTenantBackupSuccess'),
    description:
      "ADMIN. Starts a RESTORE run: the tenant's schema or database is replaced by the backup's (a deleted tenant comes back)",
    authScopes: { admin: true },
    args: { input: t.arg({ type: RestoreTenantBackupInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError, PreconditionFailedError],
      union: { name: 'RestoreTenantBackupResult' },
    },
    resolve: async (_root, { input }, context) => {
      const backupId = tryDecodeId(input.backupId, 'TenantBackup');
      if (!backupId) throw new AppNotFoundError('Backup not found');
      const run = await busyAsPrecondition(() =>
        context.services.runs.startRestoreRun({ backupId, confirmName: input.confirmName }, actorOf(context)),
      );
      return { runId: run.id };
    },
  }),
);

// The contract's unions have no ConflictError: a tenant another run holds is a precondition.
async function busyAsPrecondition<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (error instanceof ConflictError) throw new AppPrecondition(error.message, { cause: error });
    throw error;
  }
}
