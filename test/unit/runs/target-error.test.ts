import { describe, expect, it } from 'vitest';
import { MigrationFailedError } from '../../../src/migrations/index.js';
import { describeTargetError } from '../../../src/runs/target-error.js';

describe('describeTargetError', () => {
  it('keeps file, line and SQLSTATE of a failed migration', () => {
    const cause = Object.assign(new Error('relation "x" does not exist'), { code: '42P01', position: '12' });
    const error = new MigrationFailedError(
      'tenant_acme',
      '0002_add.up.sql',
      '0002',
      'SELECT 1;\nSELECT * FROM x;',
      cause,
    );
    const record = describeTargetError(error);
    expect(record.errorCode).toBe('42P01');
    expect(record.error).toContain('0002_add.up.sql');
    expect(record.error).toContain('line 2');
    expect(record.error).toContain('42P01');
  });

  it('finds a SQLSTATE on the cause and scrubs connection strings', () => {
    const error = new Error('cannot reach postgresql://admin:secret@db/tenant', {
      cause: Object.assign(new Error('x'), { code: '08006' }),
    });
    expect(describeTargetError(error)).toEqual({
      error: 'cannot reach [redacted] (SQLSTATE 08006)',
      errorCode: '08006',
    });
  });

  it('stores no code for errors that are not from pg', () => {
    expect(describeTargetError(new Error('boom'))).toEqual({ error: 'boom', errorCode: null });
  });
});
