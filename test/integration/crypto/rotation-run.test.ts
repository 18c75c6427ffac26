import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { resealConnectionStrings } from '../../../src/crypto/reseal-connection-strings.js';
import { createSecretBoxFromConfig, type SecretBox } from '../../../src/crypto/secret-box.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { ledgerVersions, waitForRunEnd } from '../runs/run-assertions.js';

const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('base64');
const KEY_LOST = randomBytes(32).toString('base64');
const boxOf = (key: string) => createSecretBoxFromConfig(loadConfig({ ENCRYPTION_KEY: key }));

describe('a migration run after ENCRYPTION_KEY changed', () => {
  // The worker's process was restarted with key B, keeping key A for decrypting.
  const h = useRunHarness('fleet', { ENCRYPTION_KEY: KEY_B, ENCRYPTION_KEYS_PREVIOUS: KEY_A });

  async function resealUnder(box: SecretBox, tenantIds: string[]): Promise<void> {
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: tenantIds } } });
    for (const database of databases) {
      await h.db.tenantDatabase.update({
        where: { id: database.id },
        data: { connectionStringEncrypted: box.sealConnectionString(database.id, h.database.url) },
      });
    }
  }

  it('opens rows sealed under the previous key, fails only the tenant whose key is gone, naming it', async () => {
    const underA = await h.createTenants('rot_a', 3);
    const [lost] = await h.createTenants('rot_lost', 1);
    await resealUnder(boxOf(KEY_A), underA);
    await resealUnder(boxOf(KEY_LOST), [lost!]);
    const worker = await h.startWorker();

    const run = await h.service.startMigrationRun(
      { tenants: { ids: [...underA, lost!] }, concurrency: 4 },
      ACTOR,
    );
    const ended = await waitForRunEnd(h.db, run.id);
    expect(ended).toMatchObject({ status: 'FAILED', succeeded: 3, failed: 1 });
    for (const name of ['rot_a_000', 'rot_a_001', 'rot_a_002'])
      expect(await ledgerVersions(h.database.pool, `tenant_${name}`)).toEqual(['0001', '0002', '0003']);
    const failedTarget = await h.db.migrationRunTarget.findFirstOrThrow({
      where: { runId: run.id, tenantId: lost! },
    });
    expect(failedTarget.error).toContain(`encryption key ${boxOf(KEY_LOST).currentKeyId}`);
    expect(failedTarget.error).not.toContain(KEY_LOST);

    // After a reseal, key B alone opens every row it could open before.
    const summary = await resealConnectionStrings(h.database.pool, h.secretBox);
    expect(summary).toMatchObject({
      resealed: 3,
      failed: [expect.objectContaining({ tenantDatabaseId: expect.any(String) })],
    });
    const onlyB = boxOf(KEY_B);
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: underA } } });
    for (const database of databases) expect(onlyB.openConnectionString(database)).toBe(h.database.url);
    await worker.close();
  });
});
