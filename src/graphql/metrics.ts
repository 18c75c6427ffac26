import { parseBearer } from '../auth/principal.js';
import type { TokenService } from '../auth/tokens.js';
import { secretsEqual } from '../auth/tokens.js';
import type { Config } from '../config.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import type { SubscriptionFanoutStats } from './subscription-fanout.js';

const NO_FANOUT: SubscriptionFanoutStats = {
  executions: 0,
  sharedResults: 0,
  sseWrites: 0,
  sseEvents: 0,
  sseChunks: 0,
  sseStreams: 0,
};

/**
 * Whether an `Authorization` header value may read `/metrics`: `Bearer METRICS_TOKEN` (for
 * Prometheus scrapers, which need no API role) or any valid API token, whatever its role.
 */
export async function isMetricsReader(
  authorization: string | undefined,
  deps: {
    readonly config: Pick<Config, 'metricsToken'>;
    readonly services: { readonly tokens: Pick<TokenService, 'authenticate'> };
  },
): Promise<boolean> {
  const token = parseBearer(authorization);
  if (token && deps.config.metricsToken && secretsEqual(token, deps.config.metricsToken)) return true;
  return (await deps.services.tokens.authenticate(authorization ?? null)) !== null;
}

/** In-process counters for `/metrics`, rendered in the Prometheus text format. */
export function createMetrics(fanout: Readonly<SubscriptionFanoutStats> = NO_FANOUT) {
  const httpRequests = new Map<string, number>();
  const graphqlOperations = new Map<string, number>();

  function countHttpRequest(route: string, status: number): void {
    const key = `route="${route}",status="${status}"`;
    httpRequests.set(key, (httpRequests.get(key) ?? 0) + 1);
  }

  function countGraphqlOperation(type: string): void {
    const key = `type="${type}"`;
    graphqlOperations.set(key, (graphqlOperations.get(key) ?? 0) + 1);
  }

  /** The exposition text; run counts are read from the control-plane DB, the record. */
  async function render(db: ControlPlaneDb): Promise<string> {
    const memory = process.memoryUsage();
    const lines: string[] = [
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${memory.rss}`,
      '# HELP nodejs_heap_used_bytes V8 heap used in bytes.',
      '# TYPE nodejs_heap_used_bytes gauge',
      `nodejs_heap_used_bytes ${memory.heapUsed}`,
      '# HELP process_uptime_seconds Seconds since the process started.',
      '# TYPE process_uptime_seconds gauge',
      `process_uptime_seconds ${process.uptime().toFixed(0)}`,
      '# HELP http_requests_total HTTP requests served, by route and status.',
      '# TYPE http_requests_total counter',
      ...[...httpRequests].map(([labels, value]) => `http_requests_total{${labels}} ${value}`),
      '# HELP graphql_operations_total GraphQL operations executed, by operation type.',
      '# TYPE graphql_operations_total counter',
      ...[...graphqlOperations].map(([labels, value]) => `graphql_operations_total{${labels}} ${value}`),
      '# HELP graphql_subscription_event_executions_total Subscription events executed (once per event and distinct operation).',
      '# TYPE graphql_subscription_event_executions_total counter',
      `graphql_subscription_event_executions_total ${fanout.executions}`,
      '# HELP graphql_subscription_shared_results_total Subscription events served from a shared execution.',
      '# TYPE graphql_subscription_shared_results_total counter',
      `graphql_subscription_shared_results_total ${fanout.sharedResults}`,
      '# HELP sse_events_total Events sent on Server-Sent Events streams.',
      '# TYPE sse_events_total counter',
      `sse_events_total ${fanout.sseEvents}`,
      '# HELP sse_writes_total Socket chunks written to Server-Sent Events streams (one or more events each).',
      '# TYPE sse_writes_total counter',
      `sse_writes_total ${fanout.sseWrites}`,
      '# HELP sse_chunks_built_total Chunks of events encoded for SSE streams (streams sending the same events share one).',
      '# TYPE sse_chunks_built_total counter',
      `sse_chunks_built_total ${fanout.sseChunks}`,
      '# HELP sse_streams Server-Sent Events subscription streams open now.',
      '# TYPE sse_streams gauge',
      `sse_streams ${fanout.sseStreams}`,
    ];
    const runs = await db.migrationRun.groupBy({ by: ['status'], _count: { _all: true } });
    lines.push(
      '# HELP migration_runs Migration runs in the control-plane DB, by status.',
      '# TYPE migration_runs gauge',
    );
    for (const row of runs) lines.push(`migration_runs{status="${row.status}"} ${row._count._all}`);
    return lines.join('\n') + '\n';
  }

  return { countHttpRequest, countGraphqlOperation, render };
}
export type Metrics = ReturnType<typeof createMetrics>;
