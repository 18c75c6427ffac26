import { ValidationError } from '../errors.js';

/** A lowercase letter, then lowercase letters, digits, `_` or `-`; 3 to 50 characters in all. */
export const TENANT_NAME_PATTERN = /^[a-z][a-z0-9_-]{2,49}$/;
// Names that would collide with Postgres or with our own objects, or confuse an operator.
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'system_admin',
  'public',
  'information_schema',
  'postgres',
  'template0',
  'template1',
  'control_plane',
  'tenants',
]);
/** Prefix of every tenant schema and tenant database. */
export const TENANT_OBJECT_PREFIX = 'tenant_';

/** Why `name` is not an acceptable tenant name, or null when it is. */
export function tenantNameProblem(name: string): string | null {
  if (!TENANT_NAME_PATTERN.test(name)) {
    return 'Tenant name must be 3-50 characters: a lowercase letter, then lowercase letters, digits, "_" or "-"';
  }
  if (RESERVED_NAMES.has(name) || name.startsWith('pg_')) return `Tenant name "${name}" is reserved`;
  return null;
}

/** Returns `name` when it is a valid tenant name; throws ValidationError (field `field`) otherwise. */
export function validateTenantName(name: string, field = 'name'): string {
  const problem = tenantNameProblem(name);
  if (problem) throw new ValidationError(problem, field);
  return name;
}

/** The schema (SCHEMA isolation) or database (DATABASE isolation) of a tenant: `tenant_` + name, `-` as `_`. */
export function tenantObjectName(name: string): string {
  validateTenantName(name);
  return TENANT_OBJECT_PREFIX + name.replace(/-/g, '_');
}

/** Whether `identifier` has the shape of a name `tenantObjectName` produces (safe to drop). */
export function isTenantObjectName(identifier: string): boolean {
  return /^tenant_[a-z][a-z0-9_]{2,49}$/.test(identifier);
}
