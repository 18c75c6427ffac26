import type { ControlPlaneDb } from '../db/control-plane.js';
import type { Prisma } from '../generated/prisma/client.js';
import { redactSecrets, type Logger } from '../logger.js';
import { AUDIT_INPUT_MAX_BYTES } from './audit-retention.js';

// Input keys whose values are secrets whatever they hold: dropped from audit rows entirely.
const SECRET_KEY = /token|password|secret|connection|authorization|credential|encrypted/i;
const REDACTED = '[redacted]';
// An error message is ours, but may quote the input; keep a readable head.
const ERROR_MAX_CHARS = 2000;

/** Who made the call: recorded with each row, beside the actor's (reusable) name. */
export type ActorKind = 'api-token' | 'bootstrap' | 'auth-disabled' | 'cli';

export interface AuditEntry {
  /** A readable name: the token's name, `bootstrap-admin`, `cli:<user>`... */
  readonly actor: string;
  readonly actorKind: ActorKind;
  /** The api_tokens row, for kind `api-token`. */
  readonly actorTokenId?: string | null;
  /** The mutation name, e.g. `createTenant`. */
  readonly action: string;
  readonly targetType?: string | null;
  readonly targetId?: string | null;
  /** Omitted for calls that were refused before they ran (see graphql/audit.ts). */
  readonly input?: unknown;
  /** `success`, or the error code of the outcome (VALIDATION, FORBIDDEN, INTERNAL...). */
  readonly outcome: string;
  readonly error?: string | null;
}

/**
 * The audit log: one control_plane.audit_log row per mutation, secrets removed from the input
 * and the input capped at AUDIT_INPUT_MAX_BYTES.
 */
export function createAuditLog({ db, logger }: { db: ControlPlaneDb; logger: Logger }) {
  /** Writes one row; a failure to write is logged, never turned into the mutation's failure. */
  async function record(entry: AuditEntry): Promise<void> {
    try {
      const input = entry.input === undefined ? null : capInput(redactInput(entry.input));
      await db.auditLog.create({
        data: {
          actor: entry.actor.slice(0, 255),
          actorKind: entry.actorKind,
          actorTokenId: entry.actorTokenId ?? null,
          action: entry.action.slice(0, 100),
          targetType: entry.targetType?.slice(0, 100) ?? null,
          targetId: entry.targetId?.slice(0, 255) ?? null,
          input: input === null ? undefined : (input.value as Prisma.InputJsonValue),
          inputTruncated: input?.truncated ?? false,
          outcome: entry.outcome.slice(0, 50),
          error: entry.error == null ? null : redactSecrets(entry.error.slice(0, ERROR_MAX_CHARS)),
        },
      });
    } catch (error) {
      logger.error('could not write audit log entry', { action: entry.action, actor: entry.actor, error });
    }
  }

  return { record };
}
export type AuditLog = ReturnType<typeof createAuditLog>;

/**
 * `input` as stored: itself when its JSON fits in AUDIT_INPUT_MAX_BYTES, else the first
 * AUDIT_INPUT_MAX_BYTES of its JSON text as one string, marked as truncated.
 */
export function capInput(input: unknown): { value: unknown; truncated: boolean } {
  const json = JSON.stringify(input ?? null);
  if (Buffer.byteLength(json, 'utf8') <= AUDIT_INPUT_MAX_BYTES) return { value: input, truncated: false };
  const bytes = Buffer.from(json, 'utf8');
  // A character split at the cut decodes to U+FFFD: drop it.
  const headOf = (length: number) =>
    bytes
      .subarray(0, length)
      .toString('utf8')
      .replace(/\uFFFD$/, '');
  const storedSize = (head: string) => Buffer.byteLength(JSON.stringify(head), 'utf8');
  // Stored as a JSON string, the head grows by its escapes (up to 6 bytes for one): find the
  // longest head whose stored form fits, by bisection.
  let fits = 0;
  let tooLong = AUDIT_INPUT_MAX_BYTES + 1;
  while (tooLong - fits > 1) {
    const middle = Math.floor((fits + tooLong) / 2);
    if (storedSize(headOf(middle)) <= AUDIT_INPUT_MAX_BYTES) fits = middle;
    else tooLong = middle;
  }
  return { value: headOf(fits), truncated: true };
}

/** A JSON-safe copy of `input` with secret-named keys replaced and secret-looking strings redacted. */
export function redactInput(input: unknown): unknown {
  if (input === null || input === undefined) return null;
  // PostgreSQL's jsonb refuses NUL: one in an input must not keep the call out of the log.
  if (typeof input === 'string') return redactSecrets(withoutNul(input));
  if (typeof input === 'number' || typeof input === 'boolean') return input;
  if (typeof input === 'bigint') return input.toString();
  if (input instanceof Date) return input.toISOString();
  if (Array.isArray(input)) return input.map((item) => redactInput(item));
  if (typeof input === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
      out[withoutNul(key)] = SECRET_KEY.test(key) ? REDACTED : redactInput(value);
    }
    return out;
  }
  return null;
}

function withoutNul(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '') : text;
}
