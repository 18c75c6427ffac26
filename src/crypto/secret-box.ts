import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';

/** The envelope every new secret is sealed in: bound to where it is stored (AAD). */
const CURRENT_VERSION = 'v2';
/** The first release's envelope: no additional authenticated data. Opened, never written. */
const UNBOUND_VERSION = 'v1';
// 96-bit IVs are what GCM is specified for; a fresh random one per message.
const IV_BYTES = 12;
// The full GCM tag. Without pinning it Node accepts tags down to 4 bytes, which can be forged.
const TAG_BYTES = 16;

export interface EncryptionKey {
  readonly id: string;
  /** 32 bytes. */
  readonly key: Buffer;
}

/** Raised when a ciphertext cannot be opened; never includes the plaintext or key. */
export class SecretDecryptionError<Code extends string = 'SECRET_DECRYPTION'> extends AppError<Code> {
  constructor(message: string, options?: ErrorOptions & { code?: Code }) {
    super(options?.code ?? ('SECRET_DECRYPTION' as Code), message, options);
  }
}

/** The ciphertext names a key this process was not given: names its id, never a key. */
export class UnknownEncryptionKeyError extends SecretDecryptionError<'SECRET_UNKNOWN_KEY'> {
  constructor(readonly keyId: string) {
    super(
      `Sealed secret uses encryption key ${keyId}, which is neither ENCRYPTION_KEY nor in ENCRYPTION_KEYS_PREVIOUS`,
      { code: 'SECRET_UNKNOWN_KEY' },
    );
  }
}

/** The row a tenant database's connection string belongs to. */
export interface SealedConnectionString {
  readonly id: string;
  readonly connectionStringEncrypted: string;
}

/**
 * AES-256-GCM for secrets at rest (tenant connection strings). The ciphertext names its envelope
 * version and the key that sealed it (`v2.<keyId>.<iv>.<tag>.<data>`), so previous keys stay
 * readable while new values are sealed with the current one. A v2 ciphertext is bound to where it
 * is stored (`context`, e.g. the row id) as additional authenticated data: copied to another row it
 * fails to open. v1 ciphertexts (no binding) still open until `secrets reseal` upgrades them.
 */
export function createSecretBox(current: EncryptionKey, previous: readonly EncryptionKey[] = []) {
  const keys = new Map<string, Buffer>();
  for (const k of [current, ...previous]) {
    const known = keys.get(k.id);
    if (known && !known.equals(k.key)) throw new Error(`two different encryption keys share the id ${k.id}`);
    keys.set(k.id, k.key);
  }

  /** Seals `plaintext` under the current key, bound to `context`. */
  function seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', current.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aadOf(CURRENT_VERSION, current.id, context));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [CURRENT_VERSION, current.id, ...[iv, tag, data].map((part) => part.toString('base64url'))].join(
      '.',
    );
  }

  /** Opens a v2 ciphertext sealed for `context`, or a v1 one (which has no binding). */
  function open(sealed: string, context: string): string {
    const { version, keyId, iv, tag, data } = parse(sealed);
    const key = keys.get(keyId);
    if (!key) throw new UnknownEncryptionKeyError(keyId);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      if (version === CURRENT_VERSION) decipher.setAAD(aadOf(version, keyId, context));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new SecretDecryptionError(
        `Sealed secret failed authentication with key ${keyId} (tampered, or copied from another row)`,
        { cause: error },
      );
    }
  }

  /** True when `sealed` is in the current envelope under the current key: reseal skips it. */
  function isCurrent(sealed: string): boolean {
    const [version, keyId] = sealed.split('.');
    return version === CURRENT_VERSION && keyId === current.id;
  }

  /** Seals a tenant database's connection string, bound to its row. */
  function sealConnectionString(tenantDatabaseId: string, connectionString: string): string {
    return seal(connectionString, connectionStringContext(tenantDatabaseId));
  }

  /** Opens a tenant database's connection string; fails if it was sealed for another row. */
  function openConnectionString(database: SealedConnectionString): string {
    return open(database.connectionStringEncrypted, connectionStringContext(database.id));
  }

  return { seal, open, isCurrent, sealConnectionString, openConnectionString, currentKeyId: current.id };
}
export type SecretBox = ReturnType<typeof createSecretBox>;

/** The secret box for a process's configured keys: the current one seals, all of them open. */
export function createSecretBoxFromConfig(config: {
  readonly encryptionKeyId: string;
  readonly encryptionKey: Buffer;
  readonly previousEncryptionKeys: readonly EncryptionKey[];
}): SecretBox {
  return createSecretBox(
    { id: config.encryptionKeyId, key: config.encryptionKey },
    config.previousEncryptionKeys,
  );
}

/** What a tenant database's connection string is bound to: its table, column and row. */
export function connectionStringContext(tenantDatabaseId: string): string {
  return `control_plane.tenant_databases.connection_string_encrypted:${tenantDatabaseId}`;
}

interface Envelope {
  readonly version: string;
  readonly keyId: string;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly data: Buffer;
}

function parse(sealed: string): Envelope {
  const parts = sealed.split('.');
  const [version = '', keyId = '', iv = '', tag = '', data] = parts;
  const known = version === CURRENT_VERSION || version === UNBOUND_VERSION;
  if (parts.length !== 5 || !known || !keyId || data === undefined) {
    throw new SecretDecryptionError('Sealed secret has an unknown format');
  }
  const envelope = {
    version,
    keyId,
    iv: Buffer.from(iv, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
    data: Buffer.from(data, 'base64url'),
  };
  if (envelope.iv.length !== IV_BYTES || envelope.tag.length !== TAG_BYTES) {
    throw new SecretDecryptionError(
      `Sealed secret under key ${keyId} has a ${envelope.iv.length}-byte IV and a ${envelope.tag.length}-byte tag; expected ${IV_BYTES} and ${TAG_BYTES}`,
    );
  }
  return envelope;
}

// The header is authenticated too, so neither the version nor the key id can be swapped.
function aadOf(version: string, keyId: string, context: string): Buffer {
  return Buffer.from(`${version}.${keyId}|${context}`, 'utf8');
}
