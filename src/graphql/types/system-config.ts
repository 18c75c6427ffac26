import type { SystemConfig } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';
import { NotFoundError, ValidationError } from './errors.js';

export const SystemConfigRef = builder.objectRef<SystemConfig>('SystemConfig').implement({
  fields: (t) => ({
    key: t.exposeString('key'),
    value: t.field({ type: 'JSON', resolve: (config) => config.value }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.queryField('systemConfig', (t) =>
  t.field({
    type: SystemConfigRef,
    nullable: true,
    authScopes: { viewer: true },
    args: { key: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => context.services.systemConfig.get(args.key),
  }),
);

builder.queryField('systemConfigs', (t) =>
  t.field({
    type: [SystemConfigRef],
    authScopes: { viewer: true },
    resolve: (_root, _args, context) => context.services.systemConfig.list(),
  }),
);

const SetSystemConfigInput = builder.inputType('SetSystemConfigInput', {
  fields: (t) => ({ key: t.string({ required: true }), value: t.field({ type: 'JSON', required: true }) }),
});

const DeleteSystemConfigInput = builder.inputType('DeleteSystemConfigInput', {
  fields: (t) => ({ key: t.string({ required: true }) }),
});

const SetSystemConfigSuccess = builder
  .objectRef<{ config: SystemConfig }>('SetSystemConfigSuccess')
  .implement({
    fields: (t) => ({ config: t.field({ type: SystemConfigRef, resolve: (payload) => payload.config }) }),
  });

const DeleteSystemConfigSuccess = builder.objectRef<{ key: string }>('DeleteSystemConfigSuccess').implement({
  fields: (t) => ({ key: t.exposeString('key') }),
});

builder.mutationField('setSystemConfig', (t) =>
  t.field({
    type: SetSystemConfigSuccess,
    authScopes: { operator: true },
    args: { input: t.arg({ type: SetSystemConfigInput, required: true }) },
    errors: { types: [ValidationError], union: { name: 'SetSystemConfigResult' } },
    resolve: async (_root, { input }, context) => ({
      config: await context.services.systemConfig.set(input.key, input.value),
    }),
  }),
);

builder.mutationField('deleteSystemConfig', (t) =>
  t.field({
    type: DeleteSystemConfigSuccess,
    description: 'ADMIN',
    authScopes: { admin: true },
    args: { input: t.arg({ type: DeleteSystemConfigInput, required: true }) },
    errors: { types: [NotFoundError], union: { name: 'DeleteSystemConfigResult' } },
    resolve: async (_root, { input }, context) => ({
      key: await context.services.systemConfig.remove(input.key),
    }),
  }),
);
