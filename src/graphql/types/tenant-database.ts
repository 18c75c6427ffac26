import { builder } from '../builder.js';
import { DatabaseStatusEnum, IsolationModeEnum } from './enums.js';
import { FINGERPRINT_FIELDS, fingerprintView, SchemaFingerprintRef } from './schema-fingerprint.js';

/** Never exposes the connection string. */
export const TenantDatabaseRef = builder.prismaNode('TenantDatabase', {
  id: { field: 'id' },
  fields: (t) => ({
    isolation: t.expose('isolation', { type: IsolationModeEnum }),
    databaseName: t.exposeString('databaseName'),
    schemaName: t.exposeString('schemaName', { nullable: true }),
    host: t.exposeString('host'),
    port: t.exposeInt('port'),
    status: t.expose('status', { type: DatabaseStatusEnum }),
    schemaVersion: t.exposeString('schemaVersion', { nullable: true }),
    lastError: t.exposeString('lastError', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    fingerprint: t.field({
      type: SchemaFingerprintRef,
      nullable: true,
      description: 'Null until the structure was read once (after a migration, a VERIFY or an ADOPT run)',
      select: FINGERPRINT_FIELDS,
      resolve: (database) => fingerprintView(database),
    }),
  }),
});
