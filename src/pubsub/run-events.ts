import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPublisher, type RedisClient } from '../redis/connections.js';
import { createEventQueue, type EventQueue } from './event-queue.js';

// Events a subscriber may fall behind by before the oldest undelivered ones are dropped. A
// subscriber slower than the fleet must not overflow (which would end its stream with an
// error) nor hold memory without bound; the slots hold references to events shared by every
// subscriber, so the cost is a pointer each. Progress in every event is current, and the
// control-plane DB is the record, so a client that lost some can always re-read the run.
export const SUBSCRIBER_BACKLOG = 4096;
// Events of one turn that one message carries at most: a turn that publishes more (a settle of a
// big run) sends several messages rather than one of megabytes.
export const EVENTS_PER_MESSAGE = 256;
// How long a target's TARGET_STARTED and MIGRATION_APPLIED events wait for its end before they go.
// They are published a few milliseconds before the target's TARGET_SUCCEEDED or TARGET_FAILED (the
// fingerprint and the finish's round trips lie between them), which otherwise goes in a message of
// its own: waiting sends a target's events as one PUBLISH per topic. B1 (N=500): 3.5 PUBLISHes a
// target instead of 5.0; the worker's CPU per tenant stayed within the runs' own spread (4.0-4.4
// ms before, 3.8-4.4 after, three runs each, alternated). Every other event goes at the end of its
// turn, so none waits behind them.
export const PUBLISH_LINGER_MS = 10;

export const RunEventType = {
  SNAPSHOT: 'SNAPSHOT',
  RUN_STARTED: 'RUN_STARTED',
  TARGET_STARTED: 'TARGET_STARTED',
  MIGRATION_APPLIED: 'MIGRATION_APPLIED',
  TARGET_SUCCEEDED: 'TARGET_SUCCEEDED',
  TARGET_FAILED: 'TARGET_FAILED',
  RUN_FINISHED: 'RUN_FINISHED',
} as const;
export type RunEventType = (typeof RunEventType)[keyof typeof RunEventType];

/** Counters of a run's targets by status, as the API reports them (queued counts as pending). */
export interface RunProgress {
  readonly total: number;
  readonly pending: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly cancelled: number;
}

/**
 * What travels on the event bus. Events only signal a change: subscribers read the record from
 * the control-plane DB (run, target) by id. Never carries secrets.
 */
export interface RunEvent {
  readonly type: RunEventType;
  /** ISO timestamp. */
  readonly at: string;
  readonly runId: string;
  readonly runStatus: string;
  readonly progress: RunProgress;
  readonly tenantId?: string | null;
  readonly targetId?: string | null;
  readonly version?: string | null;
  readonly message?: string | null;
}

// Events that wait for their target's end (see PUBLISH_LINGER_MS).
const LINGERS: ReadonlySet<RunEventType> = new Set([
  RunEventType.TARGET_STARTED,
  RunEventType.MIGRATION_APPLIED,
]);

function lost(): void {
  // See sendNow.
}

function isRunFinished(event: RunEvent): boolean {
  return event.type === RunEventType.RUN_FINISHED;
}

export interface RunEventBusDeps {
  /** A connection used only to publish. */
  readonly publishClient: RedisClient;
  /** A connection dedicated to SUBSCRIBE (it can do nothing else). */
  readonly subscribeClient: RedisClient;
  /** REDIS_PREFIX: channels ignore the Redis database number, so every topic carries it. */
  readonly prefix: string;
}

/**
 * Run events over Redis pub/sub: any worker publishes, every API replica hears. A run's events go
 * to its run topic and, when they concern a tenant, to that tenant's topic too.
 *
 * Events published together travel as one message per topic, in order (a JSON array when there
 * are several): a target's TARGET_STARTED, MIGRATION_APPLIED and TARGET_SUCCEEDED events (see
 * PUBLISH_LINGER_MS), or one target's end and the next one's start, cost one PUBLISH instead of
 * one each, in the worker, in Redis and in every API replica. Subscribers still get each event on
 * its own.
 */
export function createRunEventBus({ publishClient, subscribeClient, prefix }: RunEventBusDeps) {
  const runTopic = `${prefix}:run-events`;
  const tenantTopic = `${prefix}:tenant-events`;
  // The event target only listens here; publishing goes through `publisher`, which keeps a
  // process's events in order on a Redis Cluster too.
  const eventTarget = createRedisEventTarget<CustomEvent<RunEvent | RunEvent[]>>({
    publishClient,
    subscribeClient,
  });
  const publisher = createPublisher(publishClient);
  // Events not sent yet, by topic, in the order they were published.
  const pending = new Map<string, RunEvent[]>();
  // The flush to come: at the end of this turn, or after the linger.
  let lingering: NodeJS.Timeout | undefined;
  let flushAtTurnEnd = false;

  /**
   * Publishes `event` to its run and, when it has one, its tenant: at the end of this turn, with
   * everything published before it; a target's start and migrations up to PUBLISH_LINGER_MS later
   * (with its end, when that comes first); RUN_FINISHED at once.
   */
  function publish(event: RunEvent): void {
    append(`${runTopic}:${event.runId}`, event);
    if (event.tenantId) append(`${tenantTopic}:${event.tenantId}`, event);
    if (isRunFinished(event)) {
      // A client waits for the end of a run, and what the worker does next in this turn (complete
      // its BullMQ job, a Lua script Redis runs first) must not go before it.
      sendNow();
    } else if (!LINGERS.has(event.type)) {
      if (!flushAtTurnEnd) {
        clearTimeout(lingering);
        flushAtTurnEnd = true;
        setImmediate(sendNow);
      }
    } else if (!flushAtTurnEnd && lingering === undefined) {
      lingering = setTimeout(sendNow, PUBLISH_LINGER_MS);
    }
  }

  function append(topic: string, event: RunEvent): void {
    const events = pending.get(topic);
    if (!events) {
      pending.set(topic, [event]);
    } else if (events.length < EVENTS_PER_MESSAGE) {
      events.push(event);
    } else {
      send(topic, events).catch(lost);
      pending.set(topic, [event]);
    }
  }

  function send(topic: string, events: readonly RunEvent[]): Promise<unknown> {
    return publisher.publish(topic, JSON.stringify(events.length === 1 ? events[0] : events));
  }

  // An event only signals a change (the control-plane DB is the record): one Redis refused (it
  // went away) is lost, and never takes the process down as an unhandled rejection.
  function sendNow(): void {
    flush().catch(lost);
  }

  /**
   * Sends what is waiting now, one message per topic; resolves once Redis has taken it (a closing
   * process awaits it before it quits Redis: a QUIT is not pipelined and would go first).
   */
  async function flush(): Promise<void> {
    clearTimeout(lingering);
    lingering = undefined;
    flushAtTurnEnd = false;
    const sent = [...pending].map(([topic, events]) => send(topic, events));
    pending.clear();
    await Promise.all(sent);
  }

  /** Live events of one run, from now on; the queue ends after RUN_FINISHED. */
  function subscribeRun(runId: string): EventQueue<RunEvent> {
    return subscribeTopic(`${runTopic}:${runId}`, isRunFinished);
  }

  /** Live events touching one tenant, from now on. */
  function subscribeTenant(tenantId: string): EventQueue<RunEvent> {
    return subscribeTopic(`${tenantTopic}:${tenantId}`);
  }

  // Topics are `<routing key>:<id>`, as graphql-yoga's createPubSub names them; each subscription
  // gets a backlog of its own (createPubSub would share one buffer instance between all of them).
  function subscribeTopic(topic: string, endsWith?: (event: RunEvent) => boolean): EventQueue<RunEvent> {
    const listener = (event: CustomEvent<RunEvent | RunEvent[]>) => {
      // A message holds one event, or the events of one turn of its publisher (see publish).
      if (Array.isArray(event.detail)) for (const one of event.detail) queue.push(one);
      else queue.push(event.detail);
    };
    const queue = createEventQueue<RunEvent>({
      backlog: SUBSCRIBER_BACKLOG,
      ...(endsWith ? { endsWith } : {}),
      onClose: () => eventTarget.removeEventListener(topic, listener),
    });
    eventTarget.addEventListener(topic, listener);
    return queue;
  }

  return { publish, flush, subscribeRun, subscribeTenant };
}
export type RunEventBus = ReturnType<typeof createRunEventBus>;
