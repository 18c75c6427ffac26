import { builder } from '../builder.js';
import { SMALL_LIST } from '../cost.js';
import { tryDecodeId } from '../ids.js';
import { cleanQuery } from '../prisma-query.js';
import { DEFAULT_SERVER_NAME } from '../../servers/server-service.js';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';

/** Never exposes the connection string. */
export const DatabaseServerRef = builder.prismaNode('DatabaseServer', {
  id: { field: 'id' },
  fields: (t) => ({
    name: t.exposeString('name'),
    host: t.exposeString('host'),
    port: t.exposeInt('port'),
    acceptingTenants: t.exposeBoolean('acceptingTenants'),
    maxConcurrentMigrations: t.exposeInt('maxConcurrentMigrations', {
      description: 'Targets running on this server at once, across all runs and workers',
    }),
    tenantCount: t.int({
      description: 'Tenants (not deleted) whose database is on this server',
      resolve: async (server, _args, context) =>
        (server as { tenantCount?: number }).tenantCount ??
        context.db.tenantDatabase.count({ where: { serverId: server.id, tenant: { deletedAt: null } } }),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectFields('TenantDatabase', (t) => ({
  server: t.field({
    type: DatabaseServerRef,
    description: 'The database server it lives on',
    // Selected with the database row, so a list of tenant databases reads their servers in
    // the same statement instead of one query per row (issue 12).
    select: (_args, _context, nestedSelection) => ({ server: nestedSelection(true) }),
    resolve: (database, _args, context) =>
      // A row registered before servers existed (moved at the next start) is on `default`.
      database.server ??
      context.db.databaseServer.findUniqueOrThrow({ where: { name: DEFAULT_SERVER_NAME } }),
  }),
}));

builder.queryField('databaseServers', (t) =>
  t.field({
    type: [DatabaseServerRef],
    description: 'Every database server tenants may live on, by name',
    authScopes: { viewer: true },
    complexity: SMALL_LIST,
    resolve: (_root, _args, context) => context.services.servers.listDatabaseServers(),
  }),
);

const RegisterDatabaseServerInput = builder.inputType('RegisterDatabaseServerInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    connectionString: t.string({
      required: true,
      description: 'A role that may create schemas and databases; checked, sealed, never returned',
    }),
    maxConcurrentMigrations: t.int({ required: false, defaultValue: 4 }),
    acceptingTenants: t.boolean({ required: false, defaultValue: true }),
  }),
});

const UpdateDatabaseServerInput = builder.inputType('UpdateDatabaseServerInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    maxConcurrentMigrations: t.int({ required: false }),
    acceptingTenants: t.boolean({ required: false }),
  }),
});

interface ServerPayload {
  readonly serverId: string;
}

function serverSuccess(name: string) {
  return builder.objectRef<ServerPayload>(name).implement({
    fields: (t) => ({
      server: t.prismaField({
        type: 'DatabaseServer',
        resolve: (query, payload, _args, context) =>
          context.db.databaseServer.findUniqueOrThrow({
            ...cleanQuery(query),
            where: { id: payload.serverId },
          }),
      }),
    }),
  });
}

const RegisterDatabaseServerSuccess = serverSuccess('RegisterDatabaseServerSuccess');
const UpdateDatabaseServerSuccess = serverSuccess('UpdateDatabaseServerSuccess');

builder.mutationField('registerDatabaseServer', (t) =>
  t.field({
    type: RegisterDatabaseServerSuccess,
    description: 'Connects to a server, checks its privileges, then registers it for new tenants',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RegisterDatabaseServerInput, required: true }) },
    errors: {
      types: [ValidationError, ConflictError],
      union: { name: 'RegisterDatabaseServerResult' },
    },
    resolve: async (_root, { input }, context) => {
      const server = await context.services.servers.registerDatabaseServer(input);
      return { serverId: server.id };
    },
  }),
);

builder.mutationField('updateDatabaseServer', (t) =>
  t.field({
    type: UpdateDatabaseServerSuccess,
    description: "Changes a server's migration budget or stops placing new tenants on it",
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateDatabaseServerInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError],
      union: { name: 'UpdateDatabaseServerResult' },
    },
    resolve: async (_root, { input }, context) => {
      const id = tryDecodeId(input.id, 'DatabaseServer');
      if (!id) throw new NotFoundError('Database server not found');
      const server = await context.services.servers.updateDatabaseServer({ ...input, id });
      return { serverId: server.id };
    },
  }),
);
