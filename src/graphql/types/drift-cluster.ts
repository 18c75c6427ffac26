import type { DriftCluster } from '../../fingerprints/fingerprint-service.js';
import {
  NotFoundError as AppNotFoundError,
  PreconditionFailedError as AppPreconditionFailedError,
} from '../../errors.js';
import { builder } from '../builder.js';
import { actorOf, cleanQuery } from '../prisma-query.js';
import { NotFoundError, ValidationError } from './errors.js';
import { runSuccess, selectorOf, TenantSelectorInput } from './migration-run.js';
import { TenantFilter } from './tenant.js';

const DriftClusterRef = builder.objectRef<DriftCluster>('DriftCluster').implement({
  description: 'Tenants whose structure has the same fingerprint at the same cached version',
  fields: (t) => ({
    hash: t.exposeString('hash'),
    version: t.exposeString('version', { nullable: true }),
    expected: t.exposeBoolean('expected', {
      description: 'Whether this is the expected structure of its version',
    }),
    tenantCount: t.exposeInt('tenantCount'),
    tenants: t.prismaField({
      type: ['Tenant'],
      description: 'A sample of the cluster, by name (at most 100)',
      args: { first: t.arg.int({ required: false, defaultValue: 20 }) },
      resolve: async (query, cluster, args, context) => {
        const ids = cluster.sampleTenantIds.slice(0, Math.max(0, Math.min(args.first ?? 20, 100)));
        if (ids.length === 0) return [];
        return context.db.tenant.findMany({
          ...cleanQuery(query),
          where: { tenantId: { in: [...ids] } },
          orderBy: [{ name: 'asc' }, { tenantId: 'asc' }],
        });
      },
    }),
  }),
});

builder.queryField('schemaDrift', (t) =>
  t.field({
    type: [DriftClusterRef],
    description: 'The fleet grouped by structure: expected clusters first; the outliers are the others',
    authScopes: { viewer: true },
    args: { filter: t.arg({ type: TenantFilter, required: false }) },
    resolve: (_root, args, context) => context.services.fingerprints.schemaDrift(args.filter),
  }),
);

const CheckSchemaDriftInput = builder.inputType('CheckSchemaDriftInput', {
  fields: (t) => ({ tenants: t.field({ type: TenantSelectorInput, required: false }) }),
});

builder.mutationField('checkSchemaDrift', (t) =>
  t.field({
    type: runSuccess('CheckSchemaDriftSuccess'),
    description:
      "OPERATOR. A VERIFY run: each tenant's structure against its version's expected one (FAILED with the first differences)",
    authScopes: { operator: true },
    args: { input: t.arg({ type: CheckSchemaDriftInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError], union: { name: 'CheckSchemaDriftResult' } },
    resolve: async (_root, { input }, context) => {
      try {
        const run = await context.services.runs.startVerifyRun(
          { tenants: selectorOf(input.tenants) },
          actorOf(context),
        );
        return { runId: run.id };
      } catch (error) {
        // The contract's union has no PreconditionFailedError: "no tenant matches" is a NotFoundError here.
        if (error instanceof AppPreconditionFailedError)
          throw new AppNotFoundError(error.message, { cause: error });
        throw error;
      }
    },
  }),
);
