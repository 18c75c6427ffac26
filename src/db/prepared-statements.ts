/**
 * The transport of the run machinery's statements: named statements PREPAREd once per
 * connection and run with `EXECUTE`, several of them in one simple-protocol string, so a
 * transaction of many statements costs one socket write per round trip and the server plans each
 * statement once per connection. The arguments are escaped literals, since a string of several
 * statements cannot carry $n parameters.
 */
import pg from 'pg';
import type { ControlPlanePool } from './control-plane.js';

/** A statement with $n parameters, PREPAREd under `name`. */
export interface NamedStatement {
  readonly name: string;
  readonly text: string;
}

/** A value an EXECUTE argument can carry. */
export type SqlValue = string | number | boolean | null | readonly string[];

/** Sends one simple-protocol string on the checked-out connection; returns the last `count` results. */
export type Send = (sql: string, count: number) => Promise<pg.QueryResult<Record<string, unknown>>[]>;

/** `EXECUTE name(args)` for one statement of the set. */
export function execute(statement: NamedStatement, ...values: readonly SqlValue[]): string {
  return values.length === 0
    ? `EXECUTE ${statement.name}`
    : `EXECUTE ${statement.name}(${values.map(sqlLiteral).join(', ')})`;
}

/**
 * Creates `withStatements(pool, fn)`: runs `fn` on one connection of `pool`, PREPAREing every
 * statement of `statements` in the first string it sends when the connection does not have them
 * yet. On any error the connection is closed, not returned: that rolls back a transaction left
 * open and leaves no doubt about what it has prepared.
 */
export function createStatementTransport(statements: Readonly<Record<string, NamedStatement>>) {
  const prepareAll = Object.values(statements)
    .map(({ name, text }) => `PREPARE ${name} AS ${text};\n`)
    .join('');
  // Connections that have the statements prepared (they live as long as the connection does).
  const prepared = new WeakSet<pg.PoolClient>();

  return async function withStatements<T>(
    pool: ControlPlanePool,
    fn: (send: Send) => Promise<T>,
  ): Promise<T> {
    const client = await pool.connect();
    const send: Send = async (sql, count) => {
      const prefix = prepared.has(client) ? '' : prepareAll;
      const result = (await client.query(prefix + sql)) as unknown as
        pg.QueryResult<Record<string, unknown>> | pg.QueryResult<Record<string, unknown>>[];
      prepared.add(client);
      return [result].flat().slice(-count);
    };
    try {
      const value = await fn(send);
      client.release();
      return value;
    } catch (error) {
      client.release(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  };
}

/** Renders a value as an SQL literal: every string escaped, numbers checked to be integers. */
export function sqlLiteral(value: SqlValue): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`not an integer: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return pg.escapeLiteral(value);
  // An untyped array literal, so the statement's parameter type (text[], uuid[]) applies.
  const items = value.map((item) => `"${item.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`);
  return pg.escapeLiteral(`{${items.join(',')}}`);
}
