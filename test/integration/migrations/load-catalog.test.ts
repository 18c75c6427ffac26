import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CatalogError, loadCatalog } from '../../../src/migrations/index.js';
import { fixtureDir } from './fixtures.js';

describe('loadCatalog', () => {
  it('reads a catalog directory, ignoring non-.sql files such as a README', async () => {
    const catalog = await loadCatalog(fixtureDir('basic'));
    expect(catalog.files.map((f) => `${f.version}_${f.name}`)).toEqual(['0001_create_widgets', '0002_add_widget_color', '0010_create_gadgets']);
    expect(catalog.files.every((f) => f.reversible)).toBe(true);
  });

  it('reads the tenant catalog shipped with the project', async () => {
    const catalog = await loadCatalog(path.resolve(import.meta.dirname, '../../../migrations/tenant'));
    expect(catalog.latest).toBe('0004');
    expect(catalog.files.every((f) => f.reversible && f.transactional)).toBe(true);
  });

  it('names an unreadable file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'catalog-'));
    await writeFile(path.join(dir, '0001_a.up.sql'), 'SELECT 1;');
    await mkdir(path.join(dir, '0002_b.up.sql'));
    const error = await loadCatalog(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CatalogError);
    expect(error).toMatchObject({ file: '0002_b.up.sql' });
  });

  it('names a missing directory', async () => {
    await expect(loadCatalog('/nonexistent/catalog')).rejects.toBeInstanceOf(CatalogError);
  });
});
