import type { ApiRole } from '../generated/prisma/enums.js';

export type { ApiRole };

/** Each role includes everything below it: ADMIN ⊃ OPERATOR ⊃ VIEWER. */
export const ROLE_RANK: Readonly<Record<ApiRole, number>> = Object.freeze({
  VIEWER: 1,
  OPERATOR: 2,
  ADMIN: 3,
});

/** Whether `role` grants at least what `needed` grants. */
export function hasRole(role: ApiRole | null | undefined, needed: ApiRole): boolean {
  return role != null && ROLE_RANK[role] >= ROLE_RANK[needed];
}

/** Whether `value` names a role. */
export function isApiRole(value: unknown): value is ApiRole {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ROLE_RANK, value);
}
