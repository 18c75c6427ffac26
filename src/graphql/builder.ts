import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import { GraphQLError } from 'graphql';
import { hasRole } from '../auth/roles.js';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import type { GraphqlContext } from './context.js';

/** The Pothos builder: plugins, scalars and the context type. Types live in ./types/. */
export const builder = new SchemaBuilder<{
  Context: GraphqlContext;
  PrismaTypes: PrismaTypes;
  AuthScopes: { viewer: boolean; operator: boolean; admin: boolean };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
    ID: { Input: string; Output: string | number };
  };
}>({
  // Scope auth first, so a denied field fails before any other plugin or resolver runs.
  plugins: [ScopeAuthPlugin, ErrorsPlugin, ValidationPlugin, RelayPlugin, PrismaPlugin, ComplexityPlugin],
  defaultFieldNullability: false,
  // Fields carry their cost (./cost.ts); use-limits.ts checks an operation's total before it runs,
  // with the request's variables, so the plugin's own per-resolver check stays off.
  complexity: { disabled: true, defaultComplexity: 1, defaultListMultiplier: 10 },
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (context) => ({
      viewer: hasRole(context.principal?.role, 'VIEWER'),
      operator: hasRole(context.principal?.role, 'OPERATOR'),
      admin: hasRole(context.principal?.role, 'ADMIN'),
    }),
    unauthorizedError: (_parent, context) => (context.principal ? forbiddenError() : unauthenticatedError()),
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // A connection's cost multiplies its selection by its page size (connectionCost), so its
    // edges list does not multiply again.
    edgesFieldOptions: { nullable: false, complexity: { field: 1, multiplier: 1 } },
    nodeFieldOptions: { nullable: false },
    nodeQueryOptions: { authScopes: { viewer: true } },
    nodesQueryOptions: false,
  },
  prisma: {
    client: (context) => context.db,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
  errors: {
    directResult: true,
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

/** The error a request without a valid token gets. */
export function unauthenticatedError(): GraphQLError {
  return new GraphQLError(
    'Authentication required: send a valid API token as "Authorization: Bearer <token>"',
    {
      extensions: { code: 'UNAUTHENTICATED' },
    },
  );
}

/** The error a request whose role is too low gets. */
export function forbiddenError(message = 'Your role does not allow this operation'): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
}
