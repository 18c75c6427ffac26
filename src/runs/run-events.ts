/** Builds the RunEvents this machinery publishes, always with the run's current progress. */
import type { MigrationRun } from '../generated/prisma/client.js';
import type { RunEvent, RunEventType } from '../pubsub/run-events.js';
import { progressOfRun } from './run-decisions.js';

/** Optional fields of an event that concerns one target or one migration. */
export interface RunEventDetails {
  readonly tenantId?: string | null;
  readonly targetId?: string | null;
  readonly version?: string | null;
  readonly message?: string | null;
}

/** A RunEvent of `type` for `run` as it stands now. */
export function buildRunEvent(
  type: RunEventType,
  run: MigrationRun,
  details: RunEventDetails = {},
): RunEvent {
  return {
    type,
    at: new Date().toISOString(),
    runId: run.id,
    runStatus: run.status,
    progress: progressOfRun(run),
    tenantId: details.tenantId ?? null,
    targetId: details.targetId ?? null,
    version: details.version ?? null,
    message: details.message ?? null,
  };
}
