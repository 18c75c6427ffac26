/** Turns whatever a target's work threw into the text and code stored on the target. */
import { redactSecrets } from '../logger.js';

/** What a failed target records: readable text and, when pg reported one, the SQLSTATE. */
export interface TargetErrorRecord {
  readonly error: string;
  readonly errorCode: string | null;
}

// error_code is varchar(5): only a real SQLSTATE fits.
const SQLSTATE = /^[0-9A-Z]{5}$/;
// Keep stored error text readable and bounded; a whole statement can end up in a message.
const MAX_ERROR_LENGTH = 4000;

/**
 * Describes `error` for the target row: the engine's MigrationFailedError message already names
 * the schema, file, line and SQLSTATE; other errors keep their message. Secrets are scrubbed.
 */
export function describeTargetError(error: unknown): TargetErrorRecord {
  const message = error instanceof Error ? error.message : String(error);
  const sqlState = sqlStateOf(error);
  const withState = sqlState && !message.includes(sqlState) ? `${message} (SQLSTATE ${sqlState})` : message;
  const text = redactSecrets(withState);
  return {
    error: text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text,
    errorCode: sqlState,
  };
}

function sqlStateOf(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const own = (error as { sqlState?: unknown }).sqlState;
  if (typeof own === 'string' && SQLSTATE.test(own)) return own;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && SQLSTATE.test(code)) return code;
  const cause = (error as { cause?: unknown }).cause;
  return cause === undefined || cause === error ? null : sqlStateOf(cause);
}
