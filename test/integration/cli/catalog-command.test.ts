import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { catalogCommand } from '../../../src/cli/catalog-command.js';
import { CatalogError } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures');

describe('catalog publish and list', () => {
  const db = useTestDatabase({ controlPlane: true });

  it('publishes a directory once, says so the second time, and lists the releases', async () => {
    const lines: string[] = [];
    const io = { out: (line: string) => void lines.push(line) };
    const config = { databaseUrl: db.url, migrationsDir: path.join(FIXTURES, 'runs/fleet') };
    await catalogCommand(config, { action: 'list' }, io);
    expect(lines.splice(0)).toEqual(['no catalog releases published yet']);
    await catalogCommand(config, { action: 'publish' }, io);
    await catalogCommand(config, { action: 'publish', dir: path.join(FIXTURES, 'runs/rolling') }, io);
    await catalogCommand(config, { action: 'publish' }, io);
    expect(lines.splice(0)).toEqual([
      expect.stringMatching(/^published release [0-9a-f]{64} \(3 migrations, latest 0003\)/),
      expect.stringMatching(/^published release [0-9a-f]{64} \(5 migrations, latest 0005\)/),
      expect.stringMatching(/^already published release [0-9a-f]{64} \(3 migrations/),
    ]);
    await catalogCommand(config, { action: 'list' }, io);
    expect(lines).toEqual([
      expect.stringMatching(/latest 0005 {2}10 files/),
      expect.stringMatching(/latest 0003 {2}6 files/),
    ]);
  });

  it('refuses a bad catalog before touching the control plane, listing every problem', async () => {
    const config = {
      databaseUrl: 'postgresql://nobody@127.0.0.1:1/none',
      migrationsDir: '/nonexistent/catalog',
    };
    await expect(
      catalogCommand(config, { action: 'publish' }, { out: () => undefined }),
    ).rejects.toBeInstanceOf(CatalogError);
  });
});
