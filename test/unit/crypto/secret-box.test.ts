import { describe, expect, it } from 'vitest';
import {
  createSecretBox,
  SecretDecryptionError,
  UnknownEncryptionKeyError,
} from '../../../src/crypto/secret-box.js';
import { captureError } from '../../helpers/errors.js';

const keyA = { id: 'aaaa0001', key: Buffer.alloc(32, 1) };
const keyB = { id: 'bbbb0002', key: Buffer.alloc(32, 2) };
const URL_A = 'postgresql://tenant:pw@127.0.0.1:5432/tenants';
// Sealed by the first release (v1 envelope, no additional authenticated data) under keyA.
const V1_UNDER_A =
  'v1.aaaa0001.ouHPPBIIUxGCJ7ot.xKZ3oFWzkpPchi784wHsCw.Ckx82tnzgChLxct5hAxuy9FRhmOmq2QR_sqqSOQJPNr4ooLzq-RXo67PeOcy';

describe('createSecretBox', () => {
  it('refuses a ciphertext whose GCM tag was cut short', () => {
    const box = createSecretBox(keyA);
    const parts = box.seal(URL_A, 'row-1').split('.');
    // A 4-byte tag is accepted by Node unless the decipher pins the length: forgeable by brute force.
    parts[3] = Buffer.from(parts[3]!, 'base64url').subarray(0, 4).toString('base64url');
    const error = captureError(() => box.open(parts.join('.'), 'row-1'));
    expect(error).toBeInstanceOf(SecretDecryptionError);
  });

  it('binds a ciphertext to its row: copied to another row it does not open', () => {
    const box = createSecretBox(keyA);
    const sealed = box.seal(URL_A, 'row-1');
    expect(box.open(sealed, 'row-1')).toBe(URL_A);
    const error = captureError(() => box.open(sealed, 'row-2'));
    expect(error).toBeInstanceOf(SecretDecryptionError);
    expect((error as Error).message).not.toContain('pw@');
  });

  it('still opens v1 ciphertexts written before row binding, and marks them for reseal', () => {
    const box = createSecretBox(keyA);
    expect(box.open(V1_UNDER_A, 'any-row')).toBe(URL_A);
    expect(box.isCurrent(V1_UNDER_A)).toBe(false);
    expect(box.isCurrent(box.seal(URL_A, 'row-1'))).toBe(true);
  });

  it('opens ciphertexts of a previous key, seals only under the current one', () => {
    const rotated = createSecretBox(keyB, [keyA]);
    expect(rotated.open(V1_UNDER_A, 'row-1')).toBe(URL_A);
    const sealedA = createSecretBox(keyA).seal(URL_A, 'row-1');
    expect(rotated.open(sealedA, 'row-1')).toBe(URL_A);
    expect(rotated.isCurrent(sealedA)).toBe(false);
    const resealed = rotated.seal(URL_A, 'row-1');
    expect(resealed.split('.').slice(0, 2)).toEqual(['v2', keyB.id]);
    expect(rotated.isCurrent(resealed)).toBe(true);
    expect(createSecretBox(keyB).open(resealed, 'row-1')).toBe(URL_A);
  });

  it('names the unknown key id, never a key or the secret', () => {
    const error = captureError(() => createSecretBox(keyB).open(V1_UNDER_A, 'row-1'));
    expect(error).toBeInstanceOf(UnknownEncryptionKeyError);
    expect(error).toMatchObject({ code: 'SECRET_UNKNOWN_KEY', keyId: 'aaaa0001' });
    expect((error as Error).message).toContain('aaaa0001');
    expect((error as Error).message).toContain('ENCRYPTION_KEYS_PREVIOUS');
    for (const secret of [keyA.key.toString('base64'), keyB.key.toString('base64'), 'pw@'])
      expect((error as Error).message).not.toContain(secret);
  });

  it('refuses a tampered or malformed envelope with a typed error', () => {
    const box = createSecretBox(keyA);
    const sealed = box.seal(URL_A, 'row-1');
    const parts = sealed.split('.');
    const flipped = Buffer.from(parts[4]!, 'base64url');
    flipped[0] = flipped[0]! ^ 1;
    parts[4] = flipped.toString('base64url');
    for (const bad of [parts.join('.'), 'v9.aaaa0001.x.y.z', 'garbage', sealed.replace(/^v2/, 'v1')]) {
      expect(
        captureError(() => box.open(bad, 'row-1')),
        bad,
      ).toBeInstanceOf(SecretDecryptionError);
    }
  });

  it('seals the same plaintext differently each time', () => {
    const box = createSecretBox(keyA);
    expect(box.seal(URL_A, 'row-1')).not.toBe(box.seal(URL_A, 'row-1'));
  });

  it('opens and seals tenant database connection strings bound to the row id', () => {
    const box = createSecretBox(keyA);
    const id = '6f1c1f5e-8a47-4f7e-9b7e-0d9a6f3f2a11';
    const row = { id, connectionStringEncrypted: box.sealConnectionString(id, URL_A) };
    expect(box.openConnectionString(row)).toBe(URL_A);
    const moved = { ...row, id: '00000000-0000-4000-8000-000000000000' };
    expect(captureError(() => box.openConnectionString(moved))).toBeInstanceOf(SecretDecryptionError);
  });
});
