import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { withConnection } from '../../../src/db/pg.js';
import { ensureDatabase } from '../../../src/migrations/index.js';
import { testServerUrl } from '../../helpers/template.js';

describe('ensureDatabase', () => {
  it('creates a missing database once, even when called concurrently', async () => {
    const name = `cpt_ensure_${randomBytes(4).toString('hex')}`;
    try {
      const created = await Promise.all([
        ensureDatabase(testServerUrl(name)),
        ensureDatabase(testServerUrl(name)),
      ]);
      expect(created.filter(Boolean).length).toBeLessThanOrEqual(1);
      expect(await ensureDatabase(testServerUrl(name))).toBe(false);
      const exists = await withConnection(testServerUrl(), (c) =>
        c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]),
      );
      expect(exists.rowCount).toBe(1);
    } finally {
      await withConnection(testServerUrl(), (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    }
  });
});
