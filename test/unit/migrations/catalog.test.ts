import { beforeAll, describe, expect, it } from 'vitest';
import { captureError } from '../../helpers/errors.js';
import {
  CatalogError,
  UnknownVersionError,
  buildCatalog,
  checksumOf,
  isTransactional,
  parseMigrationFileName,
  loadSqlParser,
} from '../../../src/migrations/index.js';
import type { CatalogSource } from '../../../src/migrations/index.js';

beforeAll(loadSqlParser);

const source = (fileName: string, sql = 'SELECT 1;'): CatalogSource => ({
  fileName,
  path: `/catalog/${fileName}`,
  bytes: Buffer.from(sql),
});

describe('parseMigrationFileName', () => {
  it('reads the version as written, its numeric order, the name and the direction', () => {
    expect(parseMigrationFileName('0003_add_priority.up.sql')).toEqual({
      version: '0003',
      order: 3n,
      name: 'add_priority',
      direction: 'up',
    });
    expect(parseMigrationFileName('12_x.down.sql')?.direction).toBe('down');
  });

  it('rejects names outside the NNNN_name.(up|down).sql pattern', () => {
    for (const name of ['add.up.sql', '0001.up.sql', '0001_x.sql', '0001_x.UP.sql', 'v1_x.up.sql']) {
      expect(parseMigrationFileName(name)).toBeNull();
    }
  });
});

describe('buildCatalog', () => {
  it('orders files numerically, so 0002 comes before 0010 whatever the width', () => {
    const catalog = buildCatalog('/catalog', [source('0010_c.up.sql'), source('2_b.up.sql'), source('0001_a.up.sql')]);
    expect(catalog.files.map((file) => file.version)).toEqual(['0001', '2', '0010']);
    expect(catalog.latest).toBe('0010');
  });

  it('pairs down files with up files and marks files without one as irreversible', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_a.up.sql'),
      source('0001_a.down.sql', 'DROP TABLE a;'),
      source('0002_b.up.sql'),
    ]);
    expect(catalog.files[0]).toMatchObject({ reversible: true, downSql: 'DROP TABLE a;', downPath: '/catalog/0001_a.down.sql' });
    expect(catalog.files[1]).toMatchObject({ reversible: false, downSql: null, downPath: null });
  });

  it('checksums the up file bytes with SHA-256', () => {
    const catalog = buildCatalog('/catalog', [source('0001_a.up.sql', 'CREATE TABLE a ();\n')]);
    expect(catalog.files[0]?.checksum).toBe(checksumOf('CREATE TABLE a ();\n'));
    expect(catalog.files[0]?.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads `-- migrate:no-transaction` on the first line, separately for up and down', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_a.up.sql', '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);'),
      source('0001_a.down.sql', 'DROP INDEX i;'),
      source('0002_b.up.sql', 'SELECT 1;\n-- migrate:no-transaction'),
    ]);
    expect(catalog.files[0]).toMatchObject({ transactional: false, downTransactional: true });
    expect(catalog.files[1]?.transactional).toBe(true);
  });

  it('finds files by numeric version and throws UnknownVersionError on require of a missing one', () => {
    const catalog = buildCatalog('/catalog', [source('0003_c.up.sql')]);
    expect(catalog.find('3')?.name).toBe('c');
    expect(catalog.find('003')?.name).toBe('c');
    expect(catalog.find('abc')).toBeUndefined();
    expect(() => catalog.require('4')).toThrow(UnknownVersionError);
  });

  it('ignores files that are not .sql, such as a README', () => {
    const catalog = buildCatalog('/catalog', [source('README.md', ''), source('0001_a.up.sql')]);
    expect(catalog.files).toHaveLength(1);
  });

  it.each([
    ['duplicate versions', [source('0002_a.up.sql'), source('2_b.up.sql')], '2_b.up.sql', /duplicate version/],
    ['a down file without its up file', [source('0001_a.up.sql'), source('0002_b.down.sql')], '0002_b.down.sql', /without an up file/],
    ['an empty file', [source('0001_a.up.sql', ' \n\t')], '0001_a.up.sql', /empty/],
    ['a .sql file not matching the pattern', [source('create_users.sql')], 'create_users.sql', /does not match/],
  ])('refuses %s with a CatalogError naming the file', (_case, sources, file, message) => {
    const error = captureError(() => buildCatalog('/catalog', sources));
    expect(error).toBeInstanceOf(CatalogError);
    expect(error).toMatchObject({ code: 'CATALOG', file });
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(message);
  });
});

describe('isTransactional', () => {
  it('accepts the marker with a byte-order mark and extra spacing', () => {
    expect(isTransactional('\uFEFF--  migrate:no-transaction  \r\nSELECT 1;')).toBe(false);
    expect(isTransactional('-- migrate:no-transactions\nSELECT 1;')).toBe(true);
  });
});

describe('catalog warnings', () => {
  it('warns about a CREATE INDEX CONCURRENTLY without IF NOT EXISTS in a no-transaction file, naming file and line', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_create_items.up.sql', 'CREATE TABLE items (id int, sku text);'),
      source(
        '0002_index_items.up.sql',
        '-- migrate:no-transaction\n-- CREATE INDEX CONCURRENTLY in a comment is fine\n' +
          'CREATE INDEX CONCURRENTLY IF NOT EXISTS items_id_idx ON items (id);\n' +
          'create unique index\n  concurrently items_sku_key ON items (sku);\n',
      ),
      source('0002_index_items.down.sql', '-- migrate:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS items_sku_key;\n'),
    ]);
    expect(catalog.warnings).toEqual([
      {
        file: '0002_index_items.up.sql',
        line: 4,
        message: expect.stringMatching(/CREATE INDEX CONCURRENTLY without IF NOT EXISTS.*replayed from its first statement/),
      },
    ]);
  });

  it('has no warnings for idempotent no-transaction files and for transactional ones', () => {
    const catalog = buildCatalog('/catalog', [
      source('0001_a.up.sql', 'CREATE TABLE a (id int);'),
      source('0002_b.up.sql', '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_id ON a (id);'),
    ]);
    expect(catalog.warnings).toEqual([]);
  });
});
