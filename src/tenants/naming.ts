import { TENANT_OBJECT_PREFIX, TENANT_OBJECT_PREFIX_PATTERN } from '../config.js';
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

export { TENANT_OBJECT_PREFIX, TENANT_OBJECT_PREFIX_PATTERN };

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

/**
 * The schema (SCHEMA isolation) or database (DATABASE isolation) of a new tenant: the deployment's
 * prefix + name, `-` as `_`. Only for registering a tenant: afterwards its name is read from its
 * row, so a later change of prefix or a rename never points at another object.
 */
export function tenantObjectName(name: string, prefix: string = TENANT_OBJECT_PREFIX): string {
  validateTenantName(name);
  if (!TENANT_OBJECT_PREFIX_PATTERN.test(prefix) || prefix.startsWith('pg_')) {
    throw new Error(`Invalid tenant object prefix "${prefix}"`);
  }
  return prefix + name.replace(/-/g, '_');
}

/** Whether `identifier` has the shape every tenant name had before prefixes were configurable (`tenant_…`). */
export function isTenantObjectName(identifier: string): boolean {
  return /^tenant_[a-z][a-z0-9_]{2,49}$/.test(identifier);
}
