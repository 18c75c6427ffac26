import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
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

  it('puts the deployment prefix before the name, within 63 characters', () => {
    expect(tenantObjectName('big-co', 'eu1_')).toBe('eu1_big_co');
    expect(tenantObjectName('x'.repeat(50), 'p'.repeat(13)).length).toBe(63);
    expect(() => tenantObjectName('acme', 'pg_')).toThrow(/prefix/);
    expect(() => tenantObjectName('acme', 'Bad-')).toThrow(/prefix/);
  });
});

describe('TENANT_OBJECT_PREFIX', () => {
  it('defaults to tenant_, the prefix every existing tenant has', () => {
    expect(loadConfig({}).tenantObjectPrefix).toBe('tenant_');
    expect(loadConfig({ TENANT_OBJECT_PREFIX: 'eu1_' }).tenantObjectPrefix).toBe('eu1_');
  });

  it.each(['Eu1_', '1eu_', 'eu-1_', 'a'.repeat(14), 'pg_x', 'x; drop'])('refuses %j', (prefix) => {
    expect(() => loadConfig({ TENANT_OBJECT_PREFIX: prefix })).toThrow(/^Invalid TENANT_OBJECT_PREFIX/);
  });
});

describe('tenant locations', () => {
  const url = 'postgresql://app:secret@db.example:6543/tenants';

  it('names the schema or database with the given prefix', () => {
    expect(tenantLocation(url, 'acme', 'SCHEMA', 'eu1_').schemaName).toBe('eu1_acme');
    expect(tenantLocation(url, 'acme', 'DATABASE', 'eu1_')).toMatchObject({
      databaseName: 'eu1_acme',
      connectionString: 'postgresql://app:secret@db.example:6543/eu1_acme',
    });
  });

  it('puts SCHEMA tenants in a schema of the tenant database', () => {
    const location = tenantLocation(url, 'acme-co', 'SCHEMA');
    expect(location).toMatchObject({
      host: 'db.example',
      port: 6543,
      databaseName: 'tenants',
      schemaName: 'tenant_acme_co',
    });
    expect(location.connectionString).toBe(url);
    expect(ledgerTargetOf(location, 'control_plane_ledger')).toEqual({
      schema: 'tenant_acme_co',
      lockKey: 'tenants/tenant_acme_co',
      ledgerTable: 'control_plane_ledger',
    });
  });

  it('gives DATABASE tenants a database of their own on the same server, objects in public', () => {
    const location = tenantLocation(url, 'acme-co', 'DATABASE');
    expect(location).toMatchObject({ databaseName: 'tenant_acme_co', schemaName: null, port: 6543 });
    expect(new URL(location.connectionString).pathname).toBe('/tenant_acme_co');
    expect(ledgerTargetOf(location, 'custom_ledger')).toEqual({
      schema: 'public',
      lockKey: 'tenant_acme_co/public',
      ledgerTable: 'custom_ledger',
    });
  });
});
