import type { RunKind } from '../generated/prisma/enums.js';
import { hasRole, type ApiRole } from './roles.js';

/**
 * The role that starting a run of each kind needs. Every other action on a run (cancel, retry)
 * needs the same role, so a lower role can never make a run do what it could not have started.
 * A new run kind must be added here: the Record type makes the compiler ask for it.
 */
export const RUN_KIND_ROLES: Readonly<Record<RunKind, ApiRole>> = Object.freeze({
  // createTenant is an OPERATOR mutation, and a PROVISION run is what it starts.
  PROVISION: 'OPERATOR',
  MIGRATE: 'OPERATOR',
  // A rollback runs down files, which usually drop tables and their data.
  ROLLBACK: 'ADMIN',
  // A VERIFY run only reads each tenant's structure (checkSchemaDrift).
  VERIFY: 'OPERATOR',
  // Adoption writes ledgers into schemas the service did not create (adoptTenants).
  ADOPT: 'ADMIN',
  // A backup only reads the tenant; a restore replaces its data with an older copy.
  BACKUP: 'OPERATOR',
  RESTORE: 'ADMIN',
});

/** The role needed to start, cancel or retry a run of `kind`. */
export function roleForRunKind(kind: RunKind): ApiRole {
  return RUN_KIND_ROLES[kind];
}

/** Whether `role` may start or act on a run of `kind`. */
export function mayActOnRun(role: ApiRole | null | undefined, kind: RunKind): boolean {
  return hasRole(role, roleForRunKind(kind));
}
