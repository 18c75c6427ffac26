import type { Principal } from '../../auth/principal.js';
import { builder } from '../builder.js';
import { ApiRoleEnum } from './enums.js';

export const ApiPrincipalRef = builder.objectRef<Principal>('ApiPrincipal').implement({
  description: 'Who the request authenticated as',
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.field({ type: ApiRoleEnum, resolve: (principal) => principal.role }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({
    type: ApiPrincipalRef,
    authScopes: { viewer: true },
    // The scope check guarantees a principal here.
    resolve: (_root, _args, context) => context.principal as Principal,
  }),
);
