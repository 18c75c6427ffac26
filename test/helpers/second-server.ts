/**
 * `useSecondServer()`: a database of this test file's own on the second PostgreSQL server
 * (127.0.0.1:5433, or SECOND_DATABASE_URL; `.ci/run` creates that cluster when missing), dropped
 * after the file with every tenant database created there.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { withDatabase } from '../../src/config.js';
import { quoteDatabase, withConnection } from '../../src/db/pg.js';

/** The second server's maintenance URL. */
export function secondServerUrl(database = 'postgres'): string {
  return withDatabase(
    process.env.SECOND_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5433/postgres',
    database,
  );
}

export interface SecondServer {
  /** The file's database on the second server. */
  readonly name: string;
  readonly url: string;
  /** Drops database `database` of the second server too after the file (a DATABASE-isolated tenant's). */
  dropAfter(database: string): void;
  /** Runs `sql` on the file's database (for inspection). */
  query<T = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<T[]>;
}

/** Registers hooks that create this file's database on the second server and drop it after. */
export function useSecondServer(): SecondServer {
  const name = `cps_${randomBytes(6).toString('hex')}`;
  const databases = [name];
  beforeAll(async () => {
    await withConnection(secondServerUrl(), (client) =>
      client.query(`CREATE DATABASE ${quoteDatabase(name)}`),
    );
  });
  afterAll(async () => {
    await withConnection(secondServerUrl(), async (client) => {
      for (const database of databases.reverse()) {
        await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(database)} WITH (FORCE)`);
      }
    });
  });
  return {
    name,
    url: secondServerUrl(name),
    dropAfter: (database) => void databases.push(database),
    query: (sql, values = []) =>
      withConnection(secondServerUrl(name), async (client) => (await client.query(sql, values)).rows),
  };
}
