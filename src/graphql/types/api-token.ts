import { builder } from '../builder.js';
import { tryDecodeId } from '../ids.js';
import { cleanQuery } from '../prisma-query.js';
import { ApiRoleEnum } from './enums.js';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';

/**
 * Never exposes the token or its hash. ADMIN only, whatever the path to it (`node`, a mutation's
 * payload, any later field): the check runs on the type itself, so `node(id:)` of a token fails
 * with FORBIDDEN for lower roles instead of resolving the row.
 */
export const ApiTokenRef = builder.prismaNode('ApiToken', {
  id: { field: 'id' },
  authScopes: { admin: true },
  runScopesOnType: true,
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.expose('role', { type: ApiRoleEnum }),
    createdBy: t.exposeString('createdBy', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
  }),
});

const CreateApiTokenInput = builder.inputType('CreateApiTokenInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    role: t.field({ type: ApiRoleEnum, required: true }),
  }),
});

const RevokeApiTokenInput = builder.inputType('RevokeApiTokenInput', {
  fields: (t) => ({ id: t.id({ required: true }) }),
});

interface CreatedTokenPayload {
  readonly token: string;
  readonly apiTokenId: string;
}

const CreateApiTokenSuccess = builder.objectRef<CreatedTokenPayload>('CreateApiTokenSuccess').implement({
  fields: (t) => ({
    token: t.exposeString('token', { description: 'The token itself: shown once, never stored' }),
    apiToken: t.prismaField({
      type: 'ApiToken',
      resolve: (query, payload, _args, context) =>
        context.db.apiToken.findUniqueOrThrow({ ...cleanQuery(query), where: { id: payload.apiTokenId } }),
    }),
  }),
});

const RevokeApiTokenSuccess = builder.objectRef<{ apiTokenId: string }>('RevokeApiTokenSuccess').implement({
  fields: (t) => ({
    apiToken: t.prismaField({
      type: 'ApiToken',
      resolve: (query, payload, _args, context) =>
        context.db.apiToken.findUniqueOrThrow({ ...cleanQuery(query), where: { id: payload.apiTokenId } }),
    }),
  }),
});

builder.mutationField('createApiToken', (t) =>
  t.field({
    type: CreateApiTokenSuccess,
    description:
      'ADMIN. The token is in the response once and never again. Names are unique: a taken one is a ConflictError',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateApiTokenInput, required: true }) },
    errors: { types: [ValidationError, ConflictError], union: { name: 'CreateApiTokenResult' } },
    resolve: async (_root, { input }, context) => {
      const created = await context.services.tokens.createToken(
        input,
        context.principal?.name ?? 'anonymous',
      );
      return { token: created.token, apiTokenId: created.apiToken.id };
    },
  }),
);

builder.mutationField('revokeApiToken', (t) =>
  t.field({
    type: RevokeApiTokenSuccess,
    description: 'ADMIN',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RevokeApiTokenInput, required: true }) },
    errors: { types: [NotFoundError], union: { name: 'RevokeApiTokenResult' } },
    resolve: async (_root, { input }, context) => {
      const id = tryDecodeId(input.id, 'ApiToken');
      if (!id) throw new NotFoundError('API token not found');
      const apiToken = await context.services.tokens.revokeToken(id);
      return { apiTokenId: apiToken.id };
    },
  }),
);
