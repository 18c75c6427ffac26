/**
 * Advisory lock keys: one stable 64-bit integer per migration target, so every process that
 * migrates the same schema (CLI, workers, the API at boot) serializes on the same lock.
 */
import { createHash } from 'node:crypto';

/** The signed 64-bit advisory lock key of `lockKey`, as a decimal string for a bigint parameter. */
export function advisoryLockKey(lockKey: string): string {
  return createHash('sha256').update(lockKey).digest().readBigInt64BE(0).toString();
}

/** The conventional lock key of a schema inside a database: `<database>/<schema>`. */
export function schemaLockKey(database: string, schema: string): string {
  return `${database}/${schema}`;
}
