/**
 * The control plane vacuums its own tables when their dead rows pass autovacuum's rule: on a
 * server with autovacuum off (as on this machine), a long-lived control plane otherwise piles dead
 * row versions into the tables every run statement reads.
 */
import { describe, expect, it } from 'vitest';
import {
  startControlPlaneUpkeep,
  tablesDueForVacuum,
  vacuumDueTables,
  VACUUM_BASE_THRESHOLD,
} from '../../../src/db/control-plane-upkeep.js';
import { withConnection } from '../../../src/db/pg.js';
import { createLogger } from '../../../src/logger.js';
import { useTestDatabase } from '../../helpers/database.js';
import { expectEventually } from '../../helpers/eventually.js';

const ROWS = VACUUM_BASE_THRESHOLD * 3;

describe('control-plane upkeep', () => {
  const database = useTestDatabase({ controlPlane: true });

  /** Inserts and deletes ROWS system_config rows on a connection of its own, closed (so reported). */
  async function leaveDeadRows(): Promise<void> {
    await withConnection(database.url, (client) =>
      client.query(
        `INSERT INTO control_plane.system_config (key, value)
           SELECT 'upkeep-' || i, '{}'::jsonb FROM generate_series(1, ${ROWS}) AS i;
         DELETE FROM control_plane.system_config WHERE key LIKE 'upkeep-%';`,
      ),
    );
  }

  function statsOf(table: string) {
    return withConnection(database.url, async (client) => {
      const { rows } = await client.query<{ dead: string; vacuums: string; analyzes: string }>(
        `SELECT n_dead_tup AS dead, vacuum_count AS vacuums, analyze_count AS analyzes
           FROM pg_stat_user_tables WHERE schemaname = 'control_plane' AND relname = $1`,
        [table],
      );
      return {
        dead: Number(rows[0]?.dead),
        vacuums: Number(rows[0]?.vacuums),
        analyzes: Number(rows[0]?.analyzes),
      };
    });
  }

  const dueTables = () => withConnection(database.url, (client) => tablesDueForVacuum(client));

  it('vacuums and analyses a table whose dead rows pass the threshold, and only that one', async () => {
    await leaveDeadRows();
    await expectEventually(async () =>
      expect((await dueTables()).map((t) => t.table)).toContain('system_config'),
    );
    const before = await statsOf('system_config');
    expect(before.dead).toBeGreaterThanOrEqual(ROWS);

    const vacuumed = await vacuumDueTables(database.url);
    expect(vacuumed.map((t) => t.table)).toContain('system_config');
    // Tables below the threshold are left alone.
    expect(vacuumed.every((t) => t.deadRows > VACUUM_BASE_THRESHOLD)).toBe(true);

    await expectEventually(async () => {
      const after = await statsOf('system_config');
      expect(after.vacuums).toBe(before.vacuums + 1);
      expect(after.analyzes).toBe(before.analyzes + 1);
      expect(after.dead).toBe(0);
    });
    expect((await dueTables()).map((t) => t.table)).not.toContain('system_config');
    expect(await vacuumDueTables(database.url)).toEqual([]);
  });

  it('leaves the pass to the process that holds the upkeep lock', async () => {
    await leaveDeadRows();
    await expectEventually(async () =>
      expect((await dueTables()).map((t) => t.table)).toContain('system_config'),
    );
    await withConnection(database.url, async (holder) => {
      await holder.query('SELECT pg_advisory_lock(7164530918254011)');
      expect(await vacuumDueTables(database.url)).toEqual([]);
    });
    // The holder's session ended: the next pass does it.
    expect((await vacuumDueTables(database.url)).map((t) => t.table)).toContain('system_config');
  });

  it('runs its passes on a timer, logs what it vacuumed, and keeps going after a failure', async () => {
    await leaveDeadRows();
    await expectEventually(async () =>
      expect((await dueTables()).map((t) => t.table)).toContain('system_config'),
    );
    const lines: string[] = [];
    const logger = createLogger('info', {}, (line) => lines.push(line));
    const failing = startControlPlaneUpkeep({
      databaseUrl: 'postgresql://postgres@127.0.0.1:1/none',
      intervalMs: 1000,
      logger,
    });
    await expectEventually(() => expect(lines.join('\n')).toContain('control-plane upkeep failed'));
    await failing.stop();

    const upkeep = startControlPlaneUpkeep({ databaseUrl: database.url, intervalMs: 1000, logger });
    try {
      await expectEventually(() => expect(lines.join('\n')).toContain('vacuumed control-plane tables'));
    } finally {
      await upkeep.stop();
    }
    expect((await dueTables()).map((t) => t.table)).not.toContain('system_config');
  });

  it('does nothing with an interval of 0', async () => {
    const lines: string[] = [];
    const upkeep = startControlPlaneUpkeep({
      databaseUrl: 'postgresql://postgres@127.0.0.1:1/none',
      intervalMs: 0,
      logger: createLogger('info', {}, (line) => lines.push(line)),
    });
    await upkeep.stop();
    expect(lines).toEqual([]);
  });
});
