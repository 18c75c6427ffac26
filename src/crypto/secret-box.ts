import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';

const FORMAT_VERSION = 'v1';
// 96-bit IVs are what GCM is specified for; a fresh random one per message.
const IV_BYTES = 12;

export interface EncryptionKey {
  readonly id: string;
  /** 32 bytes. */
  readonly key: Buffer;
}

/** Raised when a ciphertext cannot be opened; never includes the plaintext or key. */
export class SecretDecryptionError extends AppError<'SECRET_DECRYPTION'> {
  constructor(message: string, options?: ErrorOptions) {
    super('SECRET_DECRYPTION', message, options);
  }
}

/**
 * AES-256-GCM for secrets at rest (tenant connection strings). The ciphertext names the key
 * that sealed it (`v1.<keyId>.<iv>.<tag>.<data>`), so older keys can stay readable while new
 * values are sealed with the current one.
 */
export function createSecretBox(current: EncryptionKey, previous: readonly EncryptionKey[] = []) {
  const keys = new Map([current, ...previous].map((k) => [k.id, k.key]));

  function seal(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', current.key, iv);
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [FORMAT_VERSION, current.id, iv, tag, data]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  }

  function open(sealed: string): string {
    const [version, keyId, iv, tag, data] = sealed.split('.');
    if (version !== FORMAT_VERSION || !keyId || !iv || !tag || data === undefined) {
      throw new SecretDecryptionError('Sealed secret has an unknown format');
    }
    const key = keys.get(keyId);
    if (!key) throw new SecretDecryptionError(`Sealed secret uses unknown key ${keyId}`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    } catch (error) {
      throw new SecretDecryptionError(`Sealed secret failed authentication with key ${keyId}`, {
        cause: error,
      });
    }
  }

  /** True when `sealed` was made with an older key and should be re-sealed. */
  function needsRotation(sealed: string): boolean {
    return sealed.split('.')[1] !== current.id;
  }

  return { seal, open, needsRotation };
}
export type SecretBox = ReturnType<typeof createSecretBox>;
