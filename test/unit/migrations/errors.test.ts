import { describe, expect, it } from 'vitest';
import { MigrationFailedError, isTransientPgError, lineAtPosition } from '../../../src/migrations/index.js';

describe('lineAtPosition', () => {
  it('counts lines up to a 1-based character position', () => {
    const sql = 'SELECT 1;\nSELECT 2;\nSELECT x;';
    expect(lineAtPosition(sql, 1)).toBe(1);
    expect(lineAtPosition(sql, 11)).toBe(2);
    expect(lineAtPosition(sql, sql.indexOf('x') + 1)).toBe(3);
  });

  it('counts characters as pg does, not UTF-16 units', () => {
    expect(lineAtPosition('-- 😀😀\nSELECT x;', 8)).toBe(2);
  });
});

describe('MigrationFailedError', () => {
  it('names the file, schema, line and SQLSTATE and keeps the cause', () => {
    const sql = '-- comment\nALTER TABLE t ADD COLUMN p int;\nUPDATE t\nSET p = x + 1;';
    const cause = Object.assign(new Error('column "x" does not exist'), { code: '42703', position: String(sql.indexOf('x +') + 1) });
    const error = new MigrationFailedError('tenant_acme', '0003_add_priority.up.sql', '0003', sql, cause);
    expect(error.message).toBe(
      'Migration 0003_add_priority.up.sql failed on schema tenant_acme at line 4: column "x" does not exist (SQLSTATE 42703)',
    );
    expect(error).toMatchObject({ code: 'MIGRATION_FAILED', sqlState: '42703', line: 4, version: '0003', schema: 'tenant_acme' });
    expect(error.cause).toBe(cause);
  });

  it('adds the statement offset for files run statement by statement, and omits an unknown line', () => {
    const sql = 'SELECT 1;\nSELECT x;';
    const cause = Object.assign(new Error('boom'), { code: '42703', position: '8' });
    expect(new MigrationFailedError('s', 'f', '1', sql, cause, 10).line).toBe(2);
    expect(new MigrationFailedError('s', 'f', '1', sql, new Error('boom')).message).toBe('Migration f failed on schema s: boom');
  });
});

describe('isTransientPgError', () => {
  const pgError = (code: string) => Object.assign(new Error('pg'), { code });

  it.each(['40001', '40P01', '55P03', '08006', '08003', '57P01'])('treats SQLSTATE %s as transient', (code) => {
    expect(isTransientPgError(pgError(code))).toBe(true);
  });

  it.each(['42703', '23505', '42P01', '22P02'])('treats SQLSTATE %s as permanent', (code) => {
    expect(isTransientPgError(pgError(code))).toBe(false);
  });

  it('treats lost connections as transient', () => {
    expect(isTransientPgError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTransientPgError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isTransientPgError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransientPgError(new Error('syntax error'))).toBe(false);
    expect(isTransientPgError('not an error')).toBe(false);
  });

  // Found by the fault suite: a query on a pooled client whose socket broke (a tenant server that
  // became unreachable) fails with these, without a code, and used to fail the target for good.
  it.each(['Client has encountered a connection error and is not queryable', 'Client was closed and is not queryable'])(
    'treats "%s" as transient',
    (message) => {
      expect(isTransientPgError(new Error(message))).toBe(true);
    },
  );

  it('looks through a MigrationFailedError at its cause', () => {
    const wrap = (cause: unknown) => new MigrationFailedError('s', 'f.up.sql', '1', 'SELECT 1', cause);
    expect(isTransientPgError(wrap(pgError('40P01')))).toBe(true);
    expect(isTransientPgError(wrap(pgError('42703')))).toBe(false);
  });
});
