import { HistorySource } from '../../fingerprints/adoption.js';
import { builder } from '../builder.js';
import { tryDecodeId } from '../ids.js';
import { actorOf } from '../prisma-query.js';
import { TenantEnvironmentEnum } from './enums.js';
import { NotFoundError, ValidationError } from './errors.js';
import { runSuccess } from './migration-run.js';

const HistorySourceEnum = builder.enumType('HistorySource', {
  description: 'Where adoption reads an existing schema’s version',
  values: Object.values(HistorySource),
});

const AdoptTenantsInput = builder.inputType('AdoptTenantsInput', {
  fields: (t) => ({
    server: t.id({ required: false, description: 'Default: the default server' }),
    schemaPattern: t.string({
      required: true,
      description: 'SQL LIKE pattern over schema names, e.g. "legacy_%"',
    }),
    namePrefix: t.string({
      required: false,
      description: 'Stripped from the schema name to make the tenant name',
    }),
    environment: t.field({ type: TenantEnvironmentEnum, required: false, defaultValue: 'DEVELOPMENT' }),
    historySource: t.field({ type: HistorySourceEnum, required: false, defaultValue: 'AUTO' }),
    versionMap: t.field({
      type: 'JSON',
      required: false,
      description: 'For history ids that are not our versions: { "<their id>": "<our version>" }',
    }),
    dryRun: t.boolean({ required: false, defaultValue: false }),
  }),
});

builder.mutationField('adoptTenants', (t) =>
  t.field({
    type: runSuccess('AdoptTenantsSuccess'),
    description:
      'ADMIN. Registers existing schemas as PENDING tenants and starts an ADOPT run: each target decides its version and stamps our ledger (no other DDL)',
    authScopes: { admin: true },
    args: { input: t.arg({ type: AdoptTenantsInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError], union: { name: 'AdoptTenantsResult' } },
    resolve: async (_root, { input }, context) => {
      const server =
        input.server == null ? null : (tryDecodeId(input.server, 'DatabaseServer') ?? String(input.server));
      const run = await context.services.adoption.adoptTenants({ ...input, server }, actorOf(context));
      return { runId: run.id };
    },
  }),
);
