import { GraphQLError } from 'graphql';
import type { MigrationRun } from '../../generated/prisma/client.js';
import type { EventQueue } from '../../pubsub/event-queue.js';
import { RunEventType, type RunEvent } from '../../pubsub/run-events.js';
import { builder } from '../builder.js';
import type { GraphqlContext } from '../context.js';
import { tryDecodeId } from '../ids.js';
import { cleanQuery } from '../prisma-query.js';
import { readShared } from '../shared-reads.js';
import { RunEventTypeEnum } from './enums.js';
import { progressOf, RunProgressRef } from './migration-run.js';

/** Run statuses after which nothing more happens to a run. */
export const ENDED_RUN_STATUSES: ReadonlySet<string> = new Set([
  'SUCCEEDED',
  'FAILED',
  'HALTED',
  'CANCELLED',
]);

export const MigrationRunEventRef = builder.objectRef<RunEvent>('MigrationRunEvent').implement({
  description: 'Something happened to a run; `run` and `target` are read from the control-plane DB',
  fields: (t) => ({
    type: t.field({ type: RunEventTypeEnum, resolve: (event) => event.type }),
    at: t.field({ type: 'DateTime', resolve: (event) => new Date(event.at) }),
    run: t.prismaField({
      type: 'MigrationRun',
      resolve: (query, event, _args, context) =>
        readShared(context.db, 'MigrationRun', event.runId, query, () =>
          context.db.migrationRun.findUniqueOrThrow({ ...cleanQuery(query), where: { id: event.runId } }),
        ),
    }),
    progress: t.field({ type: RunProgressRef, resolve: (event) => event.progress }),
    target: t.prismaField({
      type: 'MigrationRunTarget',
      nullable: true,
      resolve: (query, event, _args, context) => {
        const id = event.targetId;
        if (!id) return null;
        return readShared(context.db, 'MigrationRunTarget', id, query, () =>
          context.db.migrationRunTarget.findUnique({ ...cleanQuery(query), where: { id } }),
        );
      },
    }),
    version: t.string({ nullable: true, resolve: (event) => event.version ?? null }),
    message: t.string({ nullable: true, resolve: (event) => event.message ?? null }),
  }),
});

builder.subscriptionField('migrationRunEvents', (t) =>
  t.field({
    type: MigrationRunEventRef,
    description: 'First a SNAPSHOT, then live events; ends after RUN_FINISHED (at once if the run had ended)',
    authScopes: { viewer: true },
    args: { runId: t.arg.id({ required: true }) },
    subscribe: (_root, args, context) => runEvents(context, args.runId),
    resolve: (event) => event,
  }),
);

builder.subscriptionField('tenantEvents', (t) =>
  t.field({
    type: MigrationRunEventRef,
    description: 'Every run event that touches this tenant',
    authScopes: { viewer: true },
    args: { tenantId: t.arg.id({ required: true }) },
    subscribe: (_root, args, context) => tenantEvents(context, args.tenantId),
    resolve: (event) => event,
  }),
);

/** A SNAPSHOT event describing `run` as stored now. */
export function snapshotEvent(run: MigrationRun): RunEvent {
  return {
    type: RunEventType.SNAPSHOT,
    at: new Date().toISOString(),
    runId: run.id,
    runStatus: run.status,
    progress: progressOf(run),
  };
}

/** The RUN_FINISHED event of `run`, which has ended, as stored now. */
export function finishedEvent(run: MigrationRun): RunEvent {
  return {
    ...snapshotEvent(run),
    type: RunEventType.RUN_FINISHED,
    at: (run.finishedAt ?? new Date()).toISOString(),
  };
}

/**
 * The run's live events behind a SNAPSHOT of it. Listening starts before the snapshot is read,
 * so nothing published in between is lost; an ended run yields its SNAPSHOT and RUN_FINISHED,
 * as every stream ends with RUN_FINISHED. The queue ends after RUN_FINISHED. Unknown runs fail
 * the subscription itself (NOT_FOUND).
 */
async function runEvents(context: GraphqlContext, globalId: string | number): Promise<EventQueue<RunEvent>> {
  const runId = tryDecodeId(globalId, 'MigrationRun');
  if (!runId) throw notFound();
  const live = context.events.subscribeRun(runId);
  try {
    await context.eventsReady();
    const run = await context.db.migrationRun.findUnique({ where: { id: runId } });
    if (!run) throw notFound();
    if (ENDED_RUN_STATUSES.has(run.status)) live.endWith([snapshotEvent(run), finishedEvent(run)]);
    else live.unshift(snapshotEvent(run));
    return live;
  } catch (error) {
    await live.return();
    throw error;
  }
}

/** Live events touching one tenant, until the subscriber leaves. */
async function tenantEvents(
  context: GraphqlContext,
  globalId: string | number,
): Promise<EventQueue<RunEvent>> {
  const tenantId = tryDecodeId(globalId, 'Tenant');
  if (!tenantId) throw new GraphQLError('Tenant not found', { extensions: { code: 'NOT_FOUND' } });
  const live = context.events.subscribeTenant(tenantId);
  try {
    const exists = await context.db.tenant.findUnique({ where: { tenantId }, select: { tenantId: true } });
    if (!exists) throw new GraphQLError('Tenant not found', { extensions: { code: 'NOT_FOUND' } });
    return live;
  } catch (error) {
    await live.return();
    throw error;
  }
}

function notFound(): GraphQLError {
  return new GraphQLError('Migration run not found', { extensions: { code: 'NOT_FOUND' } });
}
