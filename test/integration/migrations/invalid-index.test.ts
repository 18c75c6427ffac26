import { describe, expect, it } from 'vitest';
import { MigrationFailedError, loadCatalog, migrateUp } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir, ledgerVersions } from './fixtures.js';

describe('a no-transaction file that leaves an INVALID index', () => {
  const db = useTestDatabase();

  async function indexState(schema: string): Promise<{ name: string; valid: boolean }[]> {
    const { rows } = await db.pool.query<{ name: string; valid: boolean }>(
      `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = $1::regnamespace AND c.relname = 'items_sku_key'`,
      [schema],
    );
    return rows;
  }

  it('fails the retry naming the index and what to do, records nothing, and applies once the index is dropped', async () => {
    const catalog = await loadCatalog(fixtureDir('invalid_index'));
    const target = await db.createTenantSchema('invalid_index');

    // Duplicate skus: the unique index build fails and leaves an INVALID index behind.
    const first = await migrateUp(db.pool, target, catalog).catch((e: unknown) => e);
    expect(first).toMatchObject({ file: '0002_unique_items_sku.up.sql', sqlState: '23505' });
    expect(await indexState(target.schema)).toEqual([{ name: 'items_sku_key', valid: false }]);

    // The data is fixed; IF NOT EXISTS now skips the build and the index is still INVALID.
    await db.pool.query(`DELETE FROM ${target.schema}.items WHERE id = 2`);
    const retry = await migrateUp(db.pool, target, catalog).catch((e: unknown) => e);
    expect(retry).toBeInstanceOf(MigrationFailedError);
    expect(retry).toMatchObject({ file: '0002_unique_items_sku.up.sql', sqlState: '55000' });
    expect((retry as Error).message).toContain(`${target.schema}.items_sku_key`);
    expect((retry as Error).message).toContain(`DROP INDEX CONCURRENTLY ${target.schema}.items_sku_key`);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);

    await db.pool.query(`DROP INDEX CONCURRENTLY ${target.schema}.items_sku_key`);
    const result = await migrateUp(db.pool, target, catalog);
    expect(result.steps.map((step) => step.version)).toEqual(['0002']);
    expect(await indexState(target.schema)).toEqual([{ name: 'items_sku_key', valid: true }]);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001', '0002']);
  });
});
