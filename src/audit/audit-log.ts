import type { ControlPlaneDb } from '../db/control-plane.js';
import type { Prisma } from '../generated/prisma/client.js';
import { redactSecrets, type Logger } from '../logger.js';

// Input keys whose values are secrets whatever they hold: dropped from audit rows entirely.
const SECRET_KEY = /token|password|secret|connection|authorization|credential|encrypted/i;
const REDACTED = '[redacted]';

export interface AuditEntry {
  readonly actor: string;
  /** The mutation name, e.g. `createTenant`. */
  readonly action: string;
  readonly targetType?: string | null;
  readonly targetId?: string | null;
  readonly input?: unknown;
  /** `success`, or the error code of the outcome (VALIDATION, FORBIDDEN, INTERNAL...). */
  readonly outcome: string;
  readonly error?: string | null;
}

/** The audit log: one control_plane.audit_log row per mutation, secrets removed from the input. */
export function createAuditLog({ db, logger }: { db: ControlPlaneDb; logger: Logger }) {
  /** Writes one row; a failure to write is logged, never turned into the mutation's failure. */
  async function record(entry: AuditEntry): Promise<void> {
    try {
      await db.auditLog.create({
        data: {
          actor: entry.actor.slice(0, 255),
          action: entry.action.slice(0, 100),
          targetType: entry.targetType?.slice(0, 100) ?? null,
          targetId: entry.targetId?.slice(0, 255) ?? null,
          input: entry.input === undefined ? undefined : (redactInput(entry.input) as Prisma.InputJsonValue),
          outcome: entry.outcome.slice(0, 50),
          error: entry.error == null ? null : redactSecrets(entry.error),
        },
      });
    } catch (error) {
      logger.error('could not write audit log entry', { action: entry.action, actor: entry.actor, error });
    }
  }

  return { record };
}
export type AuditLog = ReturnType<typeof createAuditLog>;

/** A JSON-safe copy of `input` with secret-named keys replaced and secret-looking strings redacted. */
export function redactInput(input: unknown): unknown {
  if (input === null || input === undefined) return null;
  if (typeof input === 'string') return redactSecrets(input);
  if (typeof input === 'number' || typeof input === 'boolean') return input;
  if (typeof input === 'bigint') return input.toString();
  if (input instanceof Date) return input.toISOString();
  if (Array.isArray(input)) return input.map((item) => redactInput(item));
  if (typeof input === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
      out[key] = SECRET_KEY.test(key) ? REDACTED : redactInput(value);
    }
    return out;
  }
  return null;
}
