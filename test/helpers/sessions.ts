/**
 * How many sessions a database has had, from pg_stat_database: for tests of how many connections
 * a piece of code opens.
 */
import type pg from 'pg';

/**
 * pg_stat_database.sessions of `database` once it stops moving (a session's count reaches the
 * statistics when the session reports or ends, not at once), read on `client`.
 */
export async function settledSessionCount(
  client: Pick<pg.ClientBase, 'query'>,
  database: string,
): Promise<number> {
  const read = async () =>
    Number(
      (
        await client.query<{ sessions: string | null }>(
          'SELECT pg_stat_clear_snapshot(), (SELECT sessions FROM pg_stat_database WHERE datname = $1) AS sessions',
          [database],
        )
      ).rows[0]?.sessions ?? 0,
    );
  let last = await read();
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await read();
    if (now === last && i >= 4) return now;
    last = now;
  }
  return last;
}
