import { describe, expect, it } from 'vitest';
import { splitSqlStatements } from '../../../src/migrations/index.js';

describe('splitSqlStatements', () => {
  it('splits on top-level semicolons and keeps each offset', () => {
    const sql = '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x);\nCREATE INDEX CONCURRENTLY b ON t (y);\n';
    const statements = splitSqlStatements(sql);
    expect(statements).toHaveLength(2);
    expect(statements[1]?.text.trim()).toBe('CREATE INDEX CONCURRENTLY b ON t (y);');
    expect(sql.slice(statements[1]!.offset).startsWith(statements[1]!.text)).toBe(true);
  });

  it('ignores semicolons inside quotes, dollar quotes and comments, and drops comment-only tails', () => {
    const sql = "SELECT ';', \"a;b\";\nDO $body$ BEGIN PERFORM 1; END $body$;\n/* x; */ SELECT 2; -- done;\n";
    expect(splitSqlStatements(sql).map((s) => s.text.trim())).toEqual([
      'SELECT \';\', "a;b";',
      'DO $body$ BEGIN PERFORM 1; END $body$;',
      '/* x; */ SELECT 2;',
    ]);
  });
});
