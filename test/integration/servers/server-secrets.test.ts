/**
 * A database server's sealed connection string follows key rotation: `secrets reseal` moves it
 * under the current key, so the previous key can be dropped without losing the server.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { resealConnectionStrings } from '../../../src/crypto/reseal-connection-strings.js';
import { createSecretBox } from '../../../src/crypto/secret-box.js';
import { useRunHarness } from '../runs/run-harness.js';

describe('database server secrets', () => {
  const h = useRunHarness('fleet');

  it('reseals server connection strings under the new key', async () => {
    const newKey = { id: 'k-new', key: randomBytes(32) };
    const previous = { id: h.secretBox.currentKeyId, key: h.config.encryptionKey };
    const rotated = createSecretBox(newKey, [previous]);
    const summary = await resealConnectionStrings(h.pool, rotated, { table: 'database_servers' });
    expect(summary).toMatchObject({ resealed: 1, failed: [], interrupted: false });
    // Only the new key now: the default server's URL still opens.
    const onlyNew = createSecretBox(newKey);
    const row = await h.db.databaseServer.findUniqueOrThrow({ where: { name: 'default' } });
    expect(onlyNew.openConnectionString(row)).toBe(h.config.tenantDatabaseUrl);
  });
});
