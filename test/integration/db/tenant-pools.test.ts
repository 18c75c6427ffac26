import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { createTenantPools } from '../../../src/db/tenant-pools.js';
import { useTestDatabase } from '../../helpers/database.js';
import { expectEventually } from '../../helpers/eventually.js';
import { testServerUrl } from '../../helpers/template.js';

/** Sessions on the server under one application name: what the server sees of one TenantPools. */
async function sessionsOf(pool: pg.Pool, applicationName: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
    [applicationName],
  );
  return rows[0]?.n ?? 0;
}

describe('tenant pools', () => {
  const db = useTestDatabase();
  // A second database on the same server, as a DATABASE-isolated tenant has.
  const other = `${'cpt_pools_'}${randomBytes(4).toString('hex')}`;
  const otherUrl = testServerUrl(other);

  beforeAll(async () => {
    await withConnection(testServerUrl(), (client) =>
      client.query(`CREATE DATABASE ${quoteDatabase(other)}`),
    );
  });
  afterAll(async () => {
    await withConnection(testServerUrl(), (client) =>
      client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(other)} WITH (FORCE)`),
    );
  });

  it('holds at most maxPerServer connections to a server across its databases, and a waiter gets the next one', async () => {
    const applicationName = `pools-${randomBytes(4).toString('hex')}`;
    const pools = createTenantPools({ maxPerServer: 2, applicationName });
    const held: pg.PoolClient[] = [];
    try {
      const first = pools.poolFor(db.url);
      held.push(await first.connect(), await first.connect());
      // The other database must wait: the server's two connections are checked out.
      let answered = false;
      const waiting = pools
        .poolFor(otherUrl)
        .query<{ db: string }>('SELECT current_database() AS db')
        .then((result) => {
          answered = true;
          return result.rows[0]?.db;
        });
      await expectEventually(() => expect(pools.poolFor(otherUrl).totalCount).toBe(1));
      expect(await sessionsOf(db.pool, applicationName)).toBe(2);
      expect(pools.openConnections(db.url)).toBe(2);
      expect(answered).toBe(false);

      // Released to its pool (not closed): the idle connection is closed for the waiter.
      held.shift()!.release();
      expect(await waiting).toBe(other);
      expect(await sessionsOf(db.pool, applicationName)).toBeLessThanOrEqual(2);
    } finally {
      for (const client of held) client.release();
      await pools.close();
    }
  });

  it('never ends a pool in use: with many databases a busy pool still answers its queued and later queries', async () => {
    const applicationName = `pools-${randomBytes(4).toString('hex')}`;
    const pools = createTenantPools({ maxPerServer: 4, applicationName });
    // Another session holds an advisory lock, so the busy pool's query stays in flight.
    const blocker = await db.pool.connect();
    try {
      await blocker.query('SELECT pg_advisory_lock(4242)');
      const busy = pools.poolFor(db.url);
      const inFlight = busy.query('SELECT pg_advisory_lock_shared(4242)');
      const queued = busy.query('SELECT 1 AS one');
      await expectEventually(async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`,
        );
        expect(rows[0]?.n).toBe(1);
      });
      // 80 more databases' pools (distinct connection strings to the same server), each used once.
      const urls = Array.from({ length: 80 }, (_, i) => `${db.url}?connect_timeout=${10 + i}`);
      await Promise.all(urls.map((url) => pools.poolFor(url).query('SELECT 1')));
      expect(pools.openConnections(db.url)).toBeLessThanOrEqual(4);
      expect(await sessionsOf(db.pool, applicationName)).toBeLessThanOrEqual(4);

      await blocker.query('SELECT pg_advisory_unlock(4242)');
      await inFlight;
      expect((await queued).rows).toEqual([{ one: 1 }]);
      expect((await busy.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      expect((await pools.poolFor(db.url).query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
    } finally {
      blocker.release();
      await pools.close();
    }
  });

  it('applies statementTimeoutMs to every connection', async () => {
    const pools = createTenantPools({ maxPerServer: 1, statementTimeoutMs: 1234 });
    try {
      const { rows } = await pools
        .poolFor(db.url)
        .query<{ statement_timeout: string }>('SHOW statement_timeout');
      expect(rows[0]?.statement_timeout).toBe('1234ms');
    } finally {
      await pools.close();
    }
  });

  it('refuses a budget below one connection', () => {
    expect(() => createTenantPools({ maxPerServer: 0 })).toThrow(RangeError);
  });
});
