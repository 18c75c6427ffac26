import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ForeignLedgerError,
  MigrationFailedError,
  TransactionClosedError,
  createCatalog,
  loadCatalog,
  migrateDown,
  migrateUp,
} from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { ledgerVersions, tablesIn } from './fixtures.js';

async function catalogDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'catalog-'));
  for (const [name, sql] of Object.entries(files)) await writeFile(path.join(dir, name), sql);
  return dir;
}

describe('files that control their own transaction', () => {
  const db = useTestDatabase();

  it('runs a file with BEGIN/COMMIT unwrapped, so the tenant gets every file, in its schema, with its ledger', async () => {
    const catalog = await loadCatalog(
      await catalogDir({
        '1_create.accounts.up.sql': 'CREATE TABLE accounts (id int PRIMARY KEY);',
        '2_create-users.up.sql': 'BEGIN;\nCREATE TABLE users (id int PRIMARY KEY);\nCOMMIT;\n',
        '3_index_users.up.sql': 'CREATE TABLE notes (id int);',
      }),
    );
    for (const expectedVersion of [undefined, null]) {
      const target = await db.createTenantSchema(`txctl_${expectedVersion === null ? 'fast' : 'careful'}`);
      const result = await migrateUp(db.pool, target, catalog, expectedVersion === null ? { expectedVersion } : {});
      expect(result.toVersion).toBe('3');
      expect(await tablesIn(db.pool, target.schema)).toEqual(['accounts', 'control_plane_ledger', 'notes', 'users']);
      expect(await ledgerVersions(db.pool, target.schema)).toEqual(['1', '2', '3']);
    }
    expect(await tablesIn(db.pool, 'public')).toEqual([]);
  });

  it('fails with the name of a file that ended the group transaction anyway', async () => {
    const loaded = await loadCatalog(
      await catalogDir({
        '1_a.up.sql': 'CREATE TABLE a (id int);',
        '2_b.up.sql': 'CREATE TABLE b (id int);',
        '3_c.up.sql': 'CREATE TABLE c (id int);',
      }),
    );
    // A file the parser could not see through: the engine itself must notice.
    const files = loaded.files.map((file) => (file.version === '2' ? { ...file, upSql: 'CREATE TABLE b (id int); COMMIT;' } : file));
    const catalog = createCatalog(loaded.dir, files);
    const target = await db.createTenantSchema('txctl_closed');
    const error = await migrateUp(db.pool, target, catalog).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionClosedError);
    expect(error).toMatchObject({ file: '2_b.up.sql', schema: target.schema });
  });
});

describe('verify scripts', () => {
  const db = useTestDatabase();

  it('rolls the tenant back to its previous version and names the verify file, line and SQLSTATE', async () => {
    const dir = await catalogDir({
      '0001_items.up.sql': 'CREATE TABLE items (id int);',
      '0002_prices.up.sql': 'CREATE TABLE prices (item int);',
      '0002_prices.verify.sql': '-- every item has a price\nSELECT 1 / (SELECT count(*) FROM items)::int;\n',
    });
    const catalog = await loadCatalog(dir);
    expect(catalog.find('2')?.verifiable).toBe(true);
    for (const expectedVersion of [undefined, '0001']) {
      const target = await db.createTenantSchema(`verify_${expectedVersion ? 'fast' : 'careful'}`);
      await migrateUp(db.pool, target, catalog, { toVersion: '0001' });
      const error = await migrateUp(db.pool, target, catalog, expectedVersion ? { expectedVersion } : {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MigrationFailedError);
      expect(error).toMatchObject({ file: '0002_prices.verify.sql', line: 2, sqlState: '22012' });
      expect(await tablesIn(db.pool, target.schema)).toEqual(['control_plane_ledger', 'items']);
      expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
      await db.pool.query(`INSERT INTO ${target.schema}.items VALUES (1)`);
      await migrateUp(db.pool, target, catalog, expectedVersion ? { expectedVersion } : {});
      expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002']);
    }
  });

  it('runs after a no-transaction file, and a failure leaves the version unrecorded', async () => {
    const catalog = await loadCatalog(
      await catalogDir({
        '0001_items.up.sql': 'CREATE TABLE items (id int);',
        '0002_index.up.sql': '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_id ON items (id);',
        '0002_index.verify.sql': 'SELECT 1 / (SELECT count(*) FROM items)::int;',
      }),
    );
    const target = await db.createTenantSchema('verify_notx');
    const error = await migrateUp(db.pool, target, catalog).catch((e: unknown) => e);
    expect(error).toMatchObject({ file: '0002_index.verify.sql', sqlState: '22012' });
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
  });
});

describe('the ledger table', () => {
  const db = useTestDatabase();

  it('renames a ledger of ours still called schema_migrations under the lock, keeping its rows', async () => {
    const catalog = await loadCatalog(
      await catalogDir({ '0001_a.up.sql': 'CREATE TABLE a (id int);', '0001_a.down.sql': 'DROP TABLE a;', '0002_b.up.sql': 'CREATE TABLE b (id int);' }),
    );
    for (const direction of ['up', 'down'] as const) {
      const target = await db.createTenantSchema(`legacy_${direction}`);
      await migrateUp(db.pool, target, catalog, { toVersion: '0001' });
      await db.pool.query(`ALTER TABLE ${target.schema}.control_plane_ledger RENAME TO schema_migrations`);
      expect(await ledgerVersions(db.pool, target.schema)).toEqual([]);
      if (direction === 'up') await migrateUp(db.pool, target, catalog);
      else await migrateDown(db.pool, target, catalog, { toVersion: '0' });
      expect(await tablesIn(db.pool, target.schema)).toEqual(
        direction === 'up' ? ['a', 'b', 'control_plane_ledger'] : ['control_plane_ledger'],
      );
      expect(await ledgerVersions(db.pool, target.schema)).toEqual(direction === 'up' ? ['0001', '0002'] : []);
    }
  });

  it('leaves a catalog its own schema_migrations table, and refuses a schema golang-migrate manages in one line', async () => {
    const catalog = await loadCatalog(
      await catalogDir({
        '1_own.up.sql': 'CREATE TABLE schema_migrations (id int);\nALTER TABLE schema_migrations ADD COLUMN note text;',
        '2_drop.up.sql': 'DROP TABLE schema_migrations;',
      }),
    );
    const own = await db.createTenantSchema('ledger_own');
    await migrateUp(db.pool, own, catalog);
    expect(await ledgerVersions(db.pool, own.schema)).toEqual(['1', '2']);

    const managed = await db.createTenantSchema('ledger_gm');
    await db.pool.query(`CREATE TABLE ${managed.schema}.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`);
    const error = await migrateUp(db.pool, managed, catalog).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForeignLedgerError);
    expect((error as Error).message).toMatch(/^Schema tenant_ledger_gm is managed by golang-migrate[^\n]*$/);
    expect(await tablesIn(db.pool, managed.schema)).toEqual(['schema_migrations']);
  });
});
