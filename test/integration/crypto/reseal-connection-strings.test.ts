import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { secretsCommand, ResealIncompleteError } from '../../../src/cli/secrets-reseal.js';
import {
  replaceSealedConnectionStrings,
  resealConnectionStrings,
  type ResealProgress,
} from '../../../src/crypto/reseal-connection-strings.js';
import { createSecretBoxFromConfig } from '../../../src/crypto/secret-box.js';
import { useTestDatabase } from '../../helpers/database.js';

const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('base64');
const KEY_C = randomBytes(32).toString('base64');
const configOf = (current: string, previous = '') =>
  loadConfig({ ENCRYPTION_KEY: current, ENCRYPTION_KEYS_PREVIOUS: previous });
const boxA = createSecretBoxFromConfig(configOf(KEY_A));
const boxC = createSecretBoxFromConfig(configOf(KEY_C));
const rotating = createSecretBoxFromConfig(configOf(KEY_B, KEY_A));
const onlyB = createSecretBoxFromConfig(configOf(KEY_B));

describe('resealConnectionStrings', () => {
  const db = useTestDatabase({ controlPlane: true });
  const urlOf = (id: string) => `postgresql://tenant@127.0.0.1:5432/db_${id.slice(0, 8)}`;

  async function insert(name: string, seal: (id: string, url: string) => string): Promise<string> {
    const id = randomUUID();
    await db.pool.query(
      `WITH t AS (INSERT INTO control_plane.tenants (name, status) VALUES ($1, 'active') RETURNING tenant_id)
       INSERT INTO control_plane.tenant_databases (id, tenant_id, connection_string_encrypted, database_name, host, schema_name)
       SELECT $2, tenant_id, $3, 'tenants', '127.0.0.1', 'tenant_' || $1 FROM t`,
      [name, id, seal(id, urlOf(id))],
    );
    return id;
  }

  async function stored(): Promise<Map<string, string>> {
    const { rows } = await db.pool.query<{ id: string; sealed: string }>(
      'SELECT id::text AS id, connection_string_encrypted AS sealed FROM control_plane.tenant_databases',
    );
    return new Map(rows.map((row) => [row.id, row.sealed]));
  }

  it('stops between batches when interrupted, leaves every row openable, and a second run continues', async () => {
    const ids = [];
    for (let i = 0; i < 5; i += 1) ids.push(await insert(`seal_a_${i}`, boxA.sealConnectionString));
    ids.push(await insert('seal_b', onlyB.sealConnectionString));
    const controller = new AbortController();
    const seen: ResealProgress[] = [];
    const first = await resealConnectionStrings(db.pool, rotating, {
      batchSize: 2,
      signal: controller.signal,
      onProgress: (progress) => {
        seen.push(progress);
        controller.abort();
      },
    });
    expect(first).toMatchObject({ interrupted: true, total: 6, checked: 2, failed: [] });
    expect(seen).toHaveLength(1);
    const afterFirst = await stored();
    const current = [...afterFirst.values()].filter((sealed) => rotating.isCurrent(sealed));
    // The first batch's two rows, plus the row that was already under key B (wherever it sorts).
    expect(current.length).toBeGreaterThanOrEqual(2);
    expect(current.length).toBeLessThanOrEqual(3);
    for (const id of ids) {
      const connectionStringEncrypted = afterFirst.get(id)!;
      expect(rotating.openConnectionString({ id, connectionStringEncrypted })).toBe(urlOf(id));
    }

    const second = await resealConnectionStrings(db.pool, rotating, { batchSize: 2 });
    expect(second).toMatchObject({
      interrupted: false,
      total: 6,
      checked: 6,
      failed: [],
      changedMeanwhile: 0,
    });
    expect(second.resealed + second.alreadyCurrent).toBe(6);
    expect(first.resealed + second.resealed).toBe(5);
    const afterSecond = await stored();
    for (const id of ids) {
      const connectionStringEncrypted = afterSecond.get(id)!;
      expect(onlyB.isCurrent(connectionStringEncrypted)).toBe(true);
      expect(onlyB.openConnectionString({ id, connectionStringEncrypted })).toBe(urlOf(id));
    }

    const third = await resealConnectionStrings(db.pool, rotating);
    expect(third).toMatchObject({ resealed: 0, alreadyCurrent: 6, interrupted: false });
    expect(await stored()).toEqual(afterSecond);
  });

  it('never overwrites a row that changed after it was read', async () => {
    const id = await insert('seal_raced', boxA.sealConnectionString);
    const read = (await stored()).get(id)!;
    const rewritten = onlyB.sealConnectionString(id, 'postgresql://tenant@elsewhere:5432/moved');
    await db.pool.query(
      'UPDATE control_plane.tenant_databases SET connection_string_encrypted = $2 WHERE id = $1',
      [id, rewritten],
    );
    const replaced = await replaceSealedConnectionStrings(db.pool, [
      { id, from: read, to: rotating.sealConnectionString(id, urlOf(id)) },
    ]);
    expect(replaced).toEqual([]);
    expect((await stored()).get(id)).toBe(rewritten);
  });

  it('reports rows under a key it was not given by id, reseals the rest, and fails the command', async () => {
    const lost = await insert('seal_lost', boxC.sealConnectionString);
    const fresh = await insert('seal_fresh', boxA.sealConnectionString);
    const before = (await stored()).get(lost);
    const lines: string[] = [];
    const progress: string[] = [];
    const config = loadConfig({
      DATABASE_URL: db.url,
      ENCRYPTION_KEY: KEY_B,
      ENCRYPTION_KEYS_PREVIOUS: KEY_A,
    });
    const outcome = await secretsCommand(
      config,
      { action: 'reseal' },
      { out: (line) => lines.push(line) },
      { write: (text) => progress.push(text) },
      new AbortController().signal,
    ).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(ResealIncompleteError);
    const message = (outcome as Error).message;
    expect(message).toContain(`1 connection string(s) could not be opened, tenant databases: ${lost}`);
    expect(message).toContain(`encryption key ${boxC.currentKeyId}`);
    for (const secret of [KEY_A, KEY_B, KEY_C, 'postgresql://']) expect(message).not.toContain(secret);
    expect(lines).toEqual([
      expect.stringMatching(
        /^secrets reseal: 1 resealed under key \w+, \d+ already current, 0 changed meanwhile, 1 failed/,
      ),
    ]);
    expect(progress.join('')).toMatch(/resealing connection strings: \d+\/\d+ checked/);
    const after = await stored();
    expect(after.get(lost)).toBe(before);
    expect(onlyB.isCurrent(after.get(fresh)!)).toBe(true);
  });

  it('refuses an unknown action as bad usage', async () => {
    const config = loadConfig({ DATABASE_URL: db.url });
    await expect(secretsCommand(config, { action: 'rotate' }, { out: () => {} })).rejects.toThrow(
      'unknown action "secrets rotate"; try "secrets reseal"',
    );
  });
});
