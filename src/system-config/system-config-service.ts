import type { ControlPlaneDb } from '../db/control-plane.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { Prisma, type SystemConfig } from '../generated/prisma/client.js';

/** 1-255 letters, digits, `.`, `_`, `-` or `:`. */
export const SYSTEM_CONFIG_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,255}$/;

/** Returns `key` when valid; throws ValidationError (field `key`) otherwise. */
export function validateSystemConfigKey(key: string): string {
  if (!SYSTEM_CONFIG_KEY_PATTERN.test(key)) {
    throw new ValidationError('Key must be 1-255 letters, digits or . _ - :', 'key');
  }
  return key;
}

/** Key/value settings of the deployment; values are any JSON and round-trip exactly. */
export function createSystemConfigService({ db }: { db: ControlPlaneDb }) {
  /** One entry, or null. */
  async function get(key: string): Promise<SystemConfig | null> {
    if (!SYSTEM_CONFIG_KEY_PATTERN.test(key)) return null;
    return db.systemConfig.findUnique({ where: { key } });
  }

  /** Every entry, by key. */
  async function list(): Promise<SystemConfig[]> {
    return db.systemConfig.findMany({ orderBy: { key: 'asc' } });
  }

  /** Creates or replaces an entry. */
  async function set(key: string, value: unknown): Promise<SystemConfig> {
    validateSystemConfigKey(key);
    if (value === undefined) throw new ValidationError('A value is required', 'value');
    const json = toJsonInput(value);
    return db.systemConfig.upsert({ where: { key }, create: { key, value: json }, update: { value: json } });
  }

  /** Deletes an entry; NotFoundError when there is none. */
  async function remove(key: string): Promise<string> {
    validateSystemConfigKey(key);
    const { count } = await db.systemConfig.deleteMany({ where: { key } });
    if (count === 0) throw new NotFoundError(`No system config "${key}"`);
    return key;
  }

  return { get, list, set, remove };
}
export type SystemConfigService = ReturnType<typeof createSystemConfigService>;

// A top-level JSON null must be Prisma.JsonNull; anything else goes as it is.
function toJsonInput(value: unknown): Prisma.InputJsonValue | typeof Prisma.JsonNull {
  return value === null ? Prisma.JsonNull : (value as Prisma.InputJsonValue);
}
