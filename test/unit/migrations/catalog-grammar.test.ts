import { beforeAll, describe, expect, it } from 'vitest';
import { captureError } from '../../helpers/errors.js';
import { CatalogError, buildCatalog, loadSqlParser, planUp, renderPlanSql } from '../../../src/migrations/index.js';
import type { CatalogSource } from '../../../src/migrations/index.js';

const source = (fileName: string, sql = 'SELECT 1;'): CatalogSource => ({
  fileName,
  path: `/catalog/${fileName}`,
  bytes: Buffer.from(sql),
});

beforeAll(loadSqlParser);

describe('golang-migrate file grammar', () => {
  it('accepts titles with dots and hyphens and timestamps as versions', () => {
    const catalog = buildCatalog('/catalog', [
      source('20200101120000_add.users-table.v2.up.sql', 'CREATE TABLE users (id int);'),
      source('20200101120000_add.users-table.v2.down.sql', 'DROP TABLE users;'),
      source('20200202000000_init-schema.up.sql'),
    ]);
    expect(catalog.files.map((file) => [file.version, file.name, file.reversible])).toEqual([
      ['20200101120000', 'add.users-table.v2', true],
      ['20200202000000', 'init-schema', false],
    ]);
  });

  it('pairs up and down by version and warns when their titles differ', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_create_users.up.sql', 'CREATE TABLE users (id int);'),
      source('0001_drop_users.down.sql', 'DROP TABLE users;'),
    ]);
    expect(catalog.files[0]).toMatchObject({ reversible: true, downSql: 'DROP TABLE users;' });
    expect(catalog.warnings).toEqual([
      expect.objectContaining({ file: '0001_drop_users.down.sql', message: expect.stringMatching(/title differs.*0001_create_users\.up\.sql/) }),
    ]);
  });

  it('takes an empty or comment-only down file as a no-op step', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_a.up.sql', 'CREATE TABLE a ();'),
      source('0001_a.down.sql', ''),
      source('0002_b.up.sql', 'CREATE TABLE b ();'),
      source('0002_b.down.sql', '-- nothing to undo\n'),
    ]);
    expect(catalog.files.map((file) => [file.reversible, file.downSql])).toEqual([
      [true, ''],
      [true, '-- nothing to undo\n'],
    ]);
  });

  it('ignores files that are not .sql', () => {
    const catalog = buildCatalog('/catalog', [source('0001_a.up.sql'), source('0002_b.up.go'), source('bindata.go')]);
    expect(catalog.files).toHaveLength(1);
  });

  it('reports every problem of a catalog in one CatalogError', () => {
    const error = captureError(() =>
      buildCatalog('/catalog', [
        source('0001_a.up.sql'),
        source('0001_b.up.sql'),
        source('0002_b.down.sql'),
        source('create_users.sql'),
        source('0003_c.up.sql', ''),
        source('0005_e.verify.sql'),
      ]),
    );
    expect(error).toBeInstanceOf(CatalogError);
    const problems = (error as CatalogError).problems.map((problem) => problem.file);
    expect(problems).toEqual([
      '0001_b.up.sql',
      '0002_b.down.sql',
      '0003_c.up.sql',
      '0005_e.verify.sql',
      'create_users.sql',
    ]);
    expect((error as Error).message).toMatch(/5 problems/);
    for (const file of problems) expect((error as Error).message).toContain(file);
  });
});

describe('transaction control found by the PostgreSQL parser', () => {
  it('warns, and leaves the judgement to the server, when a file does not parse', () => {
    const catalog = buildCatalog('/catalog', [source('0001_a.up.sql', 'SELECT 1;\nCREATE TABLE (;')]);
    expect(catalog.files[0]?.transactional).toBe(true);
    expect(catalog.warnings).toEqual([
      expect.objectContaining({ file: '0001_a.up.sql', line: 2, message: expect.stringMatching(/cannot read it.*not checked/) }),
    ]);
  });

  it('runs a file with its own BEGIN/COMMIT unwrapped and says so', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_a.up.sql', "-- BEGIN; in a comment\nCREATE TABLE a (note text DEFAULT 'COMMIT;');"),
      source('0002_b.up.sql', 'BEGIN;\nCREATE TABLE b ();\nCOMMIT;\n'),
      source('0002_b.down.sql', 'START TRANSACTION;\nDROP TABLE b;\nEND;'),
      source('0003_c.up.sql', "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$;"),
    ]);
    expect(catalog.files.map((file) => [file.transactional, file.downTransactional])).toEqual([
      [true, true],
      [false, false],
      [true, true],
    ]);
    expect(catalog.warnings).toEqual([
      expect.objectContaining({ file: '0002_b.up.sql', line: 1, message: expect.stringMatching(/controls its own transaction.*runs unwrapped/) }),
      expect.objectContaining({ file: '0002_b.down.sql', line: 1 }),
    ]);
  });

  it('runs a file with CREATE INDEX CONCURRENTLY unwrapped and reports it at load, naming file and line', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_a.up.sql', 'CREATE TABLE a (id int);'),
      source('0002_b.up.sql', '-- an index\n\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_id ON a (id);'),
      source('0003_c.up.sql', '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS c_id ON a (id);'),
    ]);
    expect(catalog.files.map((file) => file.transactional)).toEqual([true, false, false]);
    expect(catalog.warnings).toEqual([
      expect.objectContaining({
        file: '0002_b.up.sql',
        line: 3,
        message: expect.stringMatching(/CREATE INDEX CONCURRENTLY cannot run inside a transaction block, so it runs unwrapped/),
      }),
    ]);
  });
});

describe('verify scripts', () => {
  it('pairs NNNN_name.verify.sql with its version', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_a.up.sql', 'CREATE TABLE a (id int);'),
      source('0001_a.verify.sql', 'SELECT 1/count(*) FROM a;'),
      source('0002_b.up.sql'),
    ]);
    expect(catalog.files.map((file) => [file.verifiable, file.verifySql])).toEqual([
      [true, 'SELECT 1/count(*) FROM a;'],
      [false, null],
    ]);
  });

  it('refuses a verify file that controls transactions', () => {
    const error = captureError(() =>
      buildCatalog('/catalog', [source('0001_a.up.sql'), source('0001_a.verify.sql', 'COMMIT;')]),
    );
    expect((error as CatalogError).problems).toEqual([expect.objectContaining({ file: '0001_a.verify.sql' })]);
  });
});

describe('plans show verify scripts', () => {
  it('prints a verify script right after its up file', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_a.up.sql', 'CREATE TABLE a (id int);'),
      source('0001_a.verify.sql', 'SELECT 1 / count(*) FROM a;'),
    ]);
    const sql = renderPlanSql(planUp(catalog, [], null), { schema: 'tenant_acme' });
    expect(sql).toMatch(
      /-- 0001_a\.up\.sql\nCREATE TABLE a \(id int\);\n-- verify: 0001_a\.verify\.sql \(a failure rolls the step back\)\nSELECT 1 \/ count\(\*\) FROM a;\n/,
    );
  });
});
