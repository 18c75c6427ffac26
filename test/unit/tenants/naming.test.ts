import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import {
  isTenantObjectName,
  tenantNameProblem,
  tenantObjectName,
  validateTenantName,
} from '../../../src/tenants/naming.js';
import { ledgerTargetOf } from '../../../src/tenants/ledger-target.js';
import { tenantLocation } from '../../../src/tenants/tenant-service.js';

describe('tenant names', () => {
  it.each(['acme', 'a12', 'big-co_2', 'x'.repeat(50)])('accepts %s', (name) => {
    expect(tenantNameProblem(name)).toBeNull();
    expect(validateTenantName(name)).toBe(name);
  });

  it.each([
    '',
    'ab',
    'Upper',
    '1abc',
    '-abc',
    '_abc',
    'x'.repeat(51),
    'x; drop schema public',
    'a b c',
    'café',
    'abc\n',
  ])('refuses %j', (name) => {
    expect(() => validateTenantName(name)).toThrow(ValidationError);
  });

  it.each([
    'system_admin',
    'public',
    'information_schema',
    'pg_catalog',
    'pg_anything',
    'postgres',
    'template0',
    'template1',
    'control_plane',
    'tenants',
  ])('refuses the reserved name %s', (name) => {
    expect(tenantNameProblem(name)).toMatch(/reserved|must be/);
  });

  it('names the field in the ValidationError', () => {
    try {
      validateTenantName('BAD', 'name');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe('name');
    }
  });

  it('derives plain identifiers: tenant_ + name with - as _', () => {
    expect(tenantObjectName('big-co')).toBe('tenant_big_co');
    expect(tenantObjectName('x'.repeat(50)).length).toBeLessThanOrEqual(63);
    expect(isTenantObjectName('tenant_big_co')).toBe(true);
    expect(isTenantObjectName('public')).toBe(false);
    expect(isTenantObjectName('tenant_x"; drop')).toBe(false);
  });
});

describe('tenant locations', () => {
  const url = 'postgresql://app:secret@db.example:6543/tenants';

  it('puts SCHEMA tenants in a schema of the tenant database', () => {
    const location = tenantLocation(url, 'acme-co', 'SCHEMA');
    expect(location).toMatchObject({
      host: 'db.example',
      port: 6543,
      databaseName: 'tenants',
      schemaName: 'tenant_acme_co',
    });
    expect(location.connectionString).toBe(url);
    expect(ledgerTargetOf(location)).toEqual({ schema: 'tenant_acme_co', lockKey: 'tenants/tenant_acme_co' });
  });

  it('gives DATABASE tenants a database of their own on the same server, objects in public', () => {
    const location = tenantLocation(url, 'acme-co', 'DATABASE');
    expect(location).toMatchObject({ databaseName: 'tenant_acme_co', schemaName: null, port: 6543 });
    expect(new URL(location.connectionString).pathname).toBe('/tenant_acme_co');
    expect(ledgerTargetOf(location)).toEqual({ schema: 'public', lockKey: 'tenant_acme_co/public' });
  });
});
