/**
 * Connections to tenant database servers. One `pg` pool per tenant database (a connection is bound
 * to one database), and above them one budget per server: a process never holds more than
 * `maxPerServer` connections to one server, whatever the number of databases (DATABASE-isolated
 * tenants) it talks to. A checkout that finds its server's budget spent waits; idle connections of
 * the server's other databases are closed to make room. Pools are never ended while the process
 * runs: a pool whose connections have all closed holds nothing and is only forgotten, so a caller
 * still holding it can use it again (it opens connections within the same budget) and no query is
 * ever stranded.
 */
import pg from 'pg';
import { createLogger } from '../logger.js';
import { resilientClientClass, type ConnectionLossLogger } from './pg.js';

export interface TenantPoolsOptions {
  /** Connections to one tenant database server held by this process, across all its databases. */
  readonly maxPerServer: number;
  /** An idle connection is closed after this long; default 30 s. */
  readonly idleTimeoutMs?: number;
  /** `statement_timeout` of every connection (e.g. for API reads); default none. */
  readonly statementTimeoutMs?: number;
  /** Shown in pg_stat_activity; default `tenant-control-plane`. */
  readonly applicationName?: string;
  /** Where a lost connection is reported; defaults to a warn-level logger on stderr. */
  readonly logger?: ConnectionLossLogger;
}

// How often poolFor forgets pools that hold no connection, so thousands of databases stay cheap.
const SWEEP_INTERVAL_MS = 1000;

/**
 * One `pg` pool per tenant database, shared by every tenant schema living in it, with connections
 * per server bounded across all of them.
 */
export function createTenantPools({
  maxPerServer,
  idleTimeoutMs = 30_000,
  statementTimeoutMs,
  applicationName = 'tenant-control-plane',
  logger = createLogger('warn'),
}: TenantPoolsOptions) {
  if (!Number.isInteger(maxPerServer) || maxPerServer < 1) {
    throw new RangeError(`maxPerServer must be a positive integer, got ${maxPerServer}`);
  }
  const pools = new Map<string, pg.Pool>();
  // Every pool that has connections, forgotten by `pools` or not, so close() ends them all.
  const live = new Set<pg.Pool>();
  const servers = new Map<string, ServerBudget>();
  const ClientBase = resilientClientClass(applicationName, logger);
  let closed = false;
  let lastSweep = 0;

  /** The pool for `connectionString`, created on first use. */
  function poolFor(connectionString: string): pg.Pool {
    if (closed) throw new Error('Tenant pools are closed');
    const existing = pools.get(connectionString);
    if (existing) return existing;
    sweep();
    const key = serverKeyOf(connectionString);
    const server = servers.get(key) ?? createServerBudget(maxPerServer);
    servers.set(key, server);
    const pool: pg.Pool = new pg.Pool({
      connectionString,
      // One database may use its server's whole budget.
      max: maxPerServer,
      idleTimeoutMillis: idleTimeoutMs,
      application_name: applicationName,
      ...(statementTimeoutMs === undefined ? {} : { statement_timeout: statementTimeoutMs }),
      Client: budgetedClientClass(ClientBase, server, () => pool),
    });
    // Reported by the client's own listener; the pool only drops the client.
    pool.on('error', () => undefined);
    pool.on('connect', () => {
      // A forgotten pool a caller still held is in use again: its idle connections count too.
      live.add(pool);
      server.pools.add(pool);
    });
    pool.on('remove', () => {
      if (pool.totalCount === 0) live.delete(pool);
    });
    // A connection going idle while another database of the server waits is closed for it.
    pool.on('release', () => {
      if (server.waiters.length > server.reclaiming) queueMicrotask(() => reclaimIdle(server, null));
    });
    server.pools.add(pool);
    pools.set(connectionString, pool);
    return pool;
  }

  /** Forgets pools without connections or waiters: they hold no socket and no timer. */
  function sweep(): void {
    const now = Date.now();
    if (now - lastSweep < SWEEP_INTERVAL_MS) return;
    lastSweep = now;
    for (const [key, pool] of pools) {
      if (pool.totalCount === 0 && pool.waitingCount === 0) {
        pools.delete(key);
        for (const server of servers.values()) server.pools.delete(pool);
      }
    }
  }

  /** Connections this process holds to the server of `connectionString` (for tests and metrics). */
  function openConnections(connectionString: string): number {
    return servers.get(serverKeyOf(connectionString))?.open ?? 0;
  }

  /** Closes every pool; waits for checked-out clients to be released. */
  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    const all = new Set([...pools.values(), ...live]);
    pools.clear();
    await Promise.all([...all].map((pool) => pool.end()));
  }

  return { poolFor, openConnections, close };
}
export type TenantPools = ReturnType<typeof createTenantPools>;

/** The connections one process holds to one server, and who waits for one. */
interface ServerBudget {
  readonly limit: number;
  open: number;
  readonly waiters: (() => void)[];
  /** Pools of this server's databases, to find idle connections to close for a waiter. */
  readonly pools: Set<pg.Pool>;
  /** Idle connections being closed for waiters, so one waiter closes one connection. */
  reclaiming: number;
}

function createServerBudget(limit: number): ServerBudget {
  return { limit, open: 0, waiters: [], pools: new Set(), reclaiming: 0 };
}

/** Waits for a connection slot on `server`; when none is free, closes an idle connection of another pool. */
function acquireSlot(server: ServerBudget, requester: pg.Pool): Promise<void> {
  if (server.open < server.limit) {
    server.open += 1;
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    server.waiters.push(resolve);
    reclaimIdle(server, requester);
  });
}

function releaseSlot(server: ServerBudget): void {
  const next = server.waiters.shift();
  // The slot passes straight to the next waiter; `open` stays the same.
  if (next) next();
  else server.open -= 1;
}

/**
 * Closes one idle connection of another database on the same server, through pg-pool's public
 * API: check it out and release it as broken. The pool with the most idle connections gives one.
 */
function reclaimIdle(server: ServerBudget, requester: pg.Pool | null): void {
  if (server.reclaiming >= server.waiters.length) return;
  let donor: pg.Pool | undefined;
  for (const pool of server.pools) {
    if (pool === requester || pool.idleCount === 0 || pool.waitingCount > 0) continue;
    if (!donor || pool.idleCount > donor.idleCount) donor = pool;
  }
  if (!donor) return;
  server.reclaiming += 1;
  donor.connect().then(
    (client) => {
      server.reclaiming -= 1;
      client.release(true);
    },
    () => {
      // Nothing to give back: the checkout itself failed (the pool is ending or the server is gone).
      server.reclaiming -= 1;
    },
  );
}

/** A client class that takes a slot of its server's budget before connecting and frees it when it ends. */
function budgetedClientClass(
  Base: new (config?: string | pg.ClientConfig) => pg.Client,
  server: ServerBudget,
  poolOf: () => pg.Pool,
): new () => pg.ClientBase {
  class BudgetedClient extends Base {
    // pg-pool calls connect(callback); the promise form is kept for completeness.
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error | null, client?: pg.Client) => void): void;
    override connect(callback?: (err: Error | null, client?: pg.Client) => void): Promise<pg.Client> | void {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        releaseSlot(server);
      };
      const connected = acquireSlot(server, poolOf()).then(async () => {
        this.once('end', release);
        try {
          await super.connect();
        } catch (error) {
          release();
          throw error;
        }
        return this as pg.Client;
      });
      if (!callback) return connected;
      connected.then(
        (client) => callback(null, client),
        (error: Error) => callback(error),
      );
    }
  }
  return BudgetedClient as unknown as new () => pg.ClientBase;
}

/** Connections are budgeted per server: host and port of a URL (the whole string if it is not one). */
function serverKeyOf(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `${url.hostname}:${url.port || '5432'}`;
  } catch {
    return connectionString;
  }
}
