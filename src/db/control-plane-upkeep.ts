/**
 * Keeps the control plane's own tables vacuumed and analysed where PostgreSQL does not.
 *
 * Every target of a run updates its target row, its tenant database row and the run row (claim and
 * finish), so a fleet run leaves several dead row versions per tenant behind. Autovacuum clears
 * them on most servers; where it is off (some managed setups, CI machines, an operator's choice),
 * or cannot keep up, they pile up: after a thousand provisionings and a few runs over 300 tenants,
 * `tenant_databases` held 9,565 dead versions for 300 live rows, and the run statements cost the
 * control-plane database 6.4 ms a target instead of 1.3-2.6 ms after a VACUUM. Tables never
 * ANALYZEd also leave the planner guessing at sizes.
 *
 * A pass reads `pg_stat_user_tables` for the control-plane schema and runs `VACUUM (ANALYZE,
 * SKIP_LOCKED)` on each table whose dead row versions exceed autovacuum's own default rule
 * (`VACUUM_BASE_THRESHOLD` + `VACUUM_SCALE_FACTOR` × live rows), under a session advisory lock so
 * that one process of the deployment does it at a time. Where autovacuum keeps up, no table is
 * due and a pass is one short connection and one read of the statistics.
 */
import pg from 'pg';
import type { Logger } from '../logger.js';
import { startPeriodic, type PeriodicJob } from '../periodic.js';
import { quoteSchema, withConnection } from './pg.js';

// Autovacuum's defaults are 50 + 0.2 × live rows; a larger base keeps small tables (a few hundred
// tenants) from being vacuumed for every handful of updates.
export const VACUUM_BASE_THRESHOLD = 500;
export const VACUUM_SCALE_FACTOR = 0.2;
// Session advisory lock held by the process vacuuming (an arbitrary constant of this service).
const UPKEEP_LOCK_KEY = 7_164_530_918_254_011n;

/** A control-plane table and what its statistics say. */
export interface TableUpkeep {
  readonly table: string;
  readonly deadRows: number;
  readonly liveRows: number;
}

/**
 * The control-plane tables due for a VACUUM: more dead row versions than the threshold. Reads the
 * statistics collector, so a change is seen once its backend has reported it (at most a second).
 */
export async function tablesDueForVacuum(
  client: Pick<pg.ClientBase, 'query'>,
  schema = 'control_plane',
): Promise<TableUpkeep[]> {
  const { rows } = await client.query<{ table: string; dead: string; live: string }>(
    `SELECT relname AS table, n_dead_tup AS dead, n_live_tup AS live
       FROM pg_stat_user_tables
      WHERE schemaname = $1 AND n_dead_tup > $2::int + $3::float8 * n_live_tup
      ORDER BY n_dead_tup DESC`,
    [schema, VACUUM_BASE_THRESHOLD, VACUUM_SCALE_FACTOR],
  );
  return rows.map((row) => ({ table: row.table, deadRows: Number(row.dead), liveRows: Number(row.live) }));
}

/**
 * One pass: VACUUM (ANALYZE) each due table, on a connection of its own: the session advisory lock
 * must stay on one connection, and VACUUM must not run inside a transaction. Returns the tables
 * vacuumed; none when nothing is due or another process holds the upkeep lock.
 */
export async function vacuumDueTables(databaseUrl: string, schema = 'control_plane'): Promise<TableUpkeep[]> {
  // Ending the session (withConnection's finally) releases its advisory lock.
  return withConnection(databaseUrl, async (client) => {
    if ((await tablesDueForVacuum(client, schema)).length === 0) return [];
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1::bigint) AS locked',
      [UPKEEP_LOCK_KEY.toString()],
    );
    if (!rows[0]?.locked) return [];
    // Read again under the lock: the process that held it may have just vacuumed them.
    const due = await tablesDueForVacuum(client, schema);
    for (const { table } of due) {
      // SKIP_LOCKED: a table autovacuum (or a manual VACUUM) is at already is left to it.
      await client.query(
        `VACUUM (ANALYZE, SKIP_LOCKED) ${quoteSchema(schema)}.${pg.escapeIdentifier(table)}`,
      );
    }
    return due;
  });
}

/**
 * Runs a pass now and then every `intervalMs` (CONTROL_PLANE_VACUUM_INTERVAL_MS; 0: never). A
 * failed pass is logged and tried again at the next interval.
 */
export function startControlPlaneUpkeep({
  databaseUrl,
  intervalMs,
  logger,
}: {
  databaseUrl: string;
  intervalMs: number;
  logger: Logger;
}): PeriodicJob {
  if (intervalMs === 0) return { stop: async () => undefined };
  return startPeriodic(async () => {
    try {
      const vacuumed = await vacuumDueTables(databaseUrl);
      if (vacuumed.length > 0) logger.info('vacuumed control-plane tables', { tables: vacuumed });
    } catch (error) {
      logger.warn('control-plane upkeep failed; retried at the next interval', { error });
    }
  }, intervalMs);
}
