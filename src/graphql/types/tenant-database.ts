import { builder } from '../builder.js';
import { DatabaseStatusEnum, IsolationModeEnum } from './enums.js';

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
  }),
});
