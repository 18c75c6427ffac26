import pg from 'pg';

export interface TenantPoolsOptions {
  /** Connections per tenant database (server + database) held by this process. */
  readonly maxPerDatabase: number;
  /** Pools unused for this long are closed, so thousands of DATABASE-isolated tenants stay bounded. */
  readonly idleCloseMs?: number;
  /** Most pools kept open at once; the least recently used is closed beyond it. */
  readonly maxPools?: number;
  /** `statement_timeout` of every connection, in milliseconds; none by default (migrations may run long). */
  readonly statementTimeoutMs?: number;
  /** `application_name` of every connection, so each set of pools is visible in pg_stat_activity. */
  readonly applicationName?: string;
}

/**
 * One `pg` pool per tenant database, shared by every tenant schema living in it: schema-isolated
 * tenants on one server reuse a single pool; each DATABASE-isolated tenant gets a small one.
 */
export function createTenantPools({
  maxPerDatabase,
  idleCloseMs = 60_000,
  maxPools = 64,
  statementTimeoutMs,
  applicationName = 'tenant-control-plane',
}: TenantPoolsOptions) {
  const pools = new Map<string, { pool: pg.Pool; lastUsed: number }>();
  let closed = false;

  /** The pool for `connectionString`, created on first use. */
  function poolFor(connectionString: string): pg.Pool {
    if (closed) throw new Error('Tenant pools are closed');
    const now = Date.now();
    const existing = pools.get(connectionString);
    if (existing) {
      existing.lastUsed = now;
      return existing.pool;
    }
    const pool = new pg.Pool({
      connectionString,
      max: maxPerDatabase,
      idleTimeoutMillis: 30_000,
      application_name: applicationName,
      ...(statementTimeoutMs ? { statement_timeout: statementTimeoutMs } : {}),
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    pool.on('error', () => undefined);
    pools.set(connectionString, { pool, lastUsed: now });
    void evict(now);
    return pool;
  }

  async function evict(now: number): Promise<void> {
    const victims = [...pools.entries()]
      .filter(
        ([, entry]) => now - entry.lastUsed > idleCloseMs && entry.pool.totalCount === entry.pool.idleCount,
      )
      .map(([key]) => key);
    if (pools.size - victims.length > maxPools) {
      const oldest = [...pools.entries()]
        .filter(([key]) => !victims.includes(key))
        .sort((a, b) => a[1].lastUsed - b[1].lastUsed)
        .slice(0, pools.size - victims.length - maxPools)
        .map(([key]) => key);
      victims.push(...oldest);
    }
    await Promise.all(
      victims.map(async (key) => {
        const entry = pools.get(key);
        pools.delete(key);
        await entry?.pool.end();
      }),
    );
  }

  /** Closes every pool; waits for checked-out clients to be released. */
  async function close(): Promise<void> {
    closed = true;
    const all = [...pools.values()];
    pools.clear();
    await Promise.all(all.map((entry) => entry.pool.end()));
  }

  return { poolFor, close };
}
export type TenantPools = ReturnType<typeof createTenantPools>;
