import { createCipheriv, randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { loadConfig } from '../../../src/config.js';
import { useTestDatabase } from '../../helpers/database.js';
import { ledgerVersions } from '../migrations/fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

// Each case sets its own keys; none is inherited from the shell.
const runCliWithKeys = (args: string[], env: Record<string, string>) =>
  runCli(args, { ENCRYPTION_KEYS_PREVIOUS: '', ...env });

const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('base64');
const ID_A = loadConfig({ ENCRYPTION_KEY: KEY_A }).encryptionKeyId;
const ID_B = loadConfig({ ENCRYPTION_KEY: KEY_B }).encryptionKeyId;
// Seven CLI processes in one test: each pays tsx's start-up, slow on a loaded 2-core machine.
const SPAWNING_TEST_TIMEOUT_MS = 240_000;

/** A connection string sealed as the first release did: v1 envelope, no row binding. */
function sealV1(keyBase64: string, plaintext: string): string {
  const key = Buffer.from(keyBase64, 'base64');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const id = loadConfig({ ENCRYPTION_KEY: keyBase64 }).encryptionKeyId;
  return ['v1', id, iv, cipher.getAuthTag(), data]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

describe('rotating ENCRYPTION_KEY', () => {
  const db = useTestDatabase({ controlPlane: true });
  const env = (keys: { ENCRYPTION_KEY: string; ENCRYPTION_KEYS_PREVIOUS?: string }) => ({
    TENANT_DATABASE_URL: db.url,
    DATABASE_URL: db.url,
    MIGRATIONS_DIR: path.join(ROOT, 'migrations/tenant'),
    ...keys,
  });

  async function registerUnderKeyA(name: string): Promise<string> {
    const { rows } = await db.pool.query<{ id: string }>(
      `WITH t AS (INSERT INTO control_plane.tenants (name, status) VALUES ($1, 'active') RETURNING tenant_id)
       INSERT INTO control_plane.tenant_databases
         (tenant_id, connection_string_encrypted, database_name, host, port, status, isolation, schema_name)
       SELECT tenant_id, $2, $3, '127.0.0.1', 5432, 'active', 'schema', $4 FROM t RETURNING id`,
      [name, sealV1(KEY_A, db.url), db.name, `tenant_${name}`],
    );
    return rows[0]!.id;
  }

  async function sealedOf(): Promise<Record<string, string>> {
    const { rows } = await db.pool.query<{ name: string; sealed: string }>(
      `SELECT t.name, d.connection_string_encrypted AS sealed
         FROM control_plane.tenants t JOIN control_plane.tenant_databases d USING (tenant_id) ORDER BY t.name`,
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.sealed]));
  }

  it(
    'opens old ciphertexts with ENCRYPTION_KEYS_PREVIOUS, reseals them, then works with the new key alone',
    async () => {
      for (const name of ['rot_a', 'rot_b', 'rot_c']) await registerUnderKeyA(name);
      const onlyB = env({ ENCRYPTION_KEY: KEY_B });
      const rotating = env({ ENCRYPTION_KEY: KEY_B, ENCRYPTION_KEYS_PREVIOUS: KEY_A });

      const refused = await runCliWithKeys(['tenant', 'up', '--tenant', 'rot_a'], onlyB);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`encryption key ${ID_A}`);
      expect(refused.stderr).toContain('ENCRYPTION_KEYS_PREVIOUS');
      for (const secret of [KEY_A, KEY_B]) expect(refused.stderr).not.toContain(secret);

      const up = await runCliWithKeys(['tenant', 'up', '--tenant', 'rot_a', '--to', '0002'], rotating);
      expect(up.code, up.stderr).toBe(0);
      expect(await ledgerVersions(db.pool, 'tenant_rot_a')).toEqual(['0001', '0002']);

      const reseal = await runCliWithKeys(['secrets', 'reseal'], rotating);
      expect(reseal.code, reseal.stderr).toBe(0);
      expect(reseal.stdout).toContain(`secrets reseal: 3 resealed under key ${ID_B}, 0 already current`);
      expect(reseal.stderr).toContain('resealing connection strings: 3/3 checked, 3 resealed, 0 failed');
      const sealed = await sealedOf();
      expect(Object.values(sealed).every((value) => value.startsWith(`v2.${ID_B}.`))).toBe(true);

      const again = await runCliWithKeys(['secrets', 'reseal'], rotating);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain(`secrets reseal: 0 resealed under key ${ID_B}, 3 already current`);
      expect(await sealedOf()).toEqual(sealed);

      const status = await runCliWithKeys(['tenant', 'status', '--tenant', 'rot_a'], onlyB);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain('current version: 0002');
      const upB = await runCliWithKeys(['tenant', 'up', '--tenant', 'rot_b'], onlyB);
      expect(upB.code, upB.stderr).toBe(0);
      expect(await ledgerVersions(db.pool, 'tenant_rot_b')).toEqual(['0001', '0002', '0003', '0004']);
    },
    SPAWNING_TEST_TIMEOUT_MS,
  );

  it(
    'refuses a connection string copied from another row',
    async () => {
      const onlyB = env({ ENCRYPTION_KEY: KEY_B });
      await db.pool.query(
        `UPDATE control_plane.tenant_databases
          SET connection_string_encrypted = (SELECT d.connection_string_encrypted
             FROM control_plane.tenant_databases d JOIN control_plane.tenants t USING (tenant_id)
            WHERE t.name = 'rot_a')
        WHERE tenant_id = (SELECT tenant_id FROM control_plane.tenants WHERE name = 'rot_c')`,
      );
      const copied = await runCliWithKeys(['tenant', 'status', '--tenant', 'rot_c'], onlyB);
      expect(copied.code).toBe(1);
      expect(copied.stderr).toMatch(
        /^error: Sealed secret failed authentication with key \w+ \(tampered, or copied/,
      );
      const original = await runCliWithKeys(['tenant', 'status', '--tenant', 'rot_a'], onlyB);
      expect(original.code, original.stderr).toBe(0);
    },
    SPAWNING_TEST_TIMEOUT_MS,
  );
});
