/** Paths and small SQL probes shared by the migration integration tests. */
import path from 'node:path';
import type { Pool } from 'pg';

/** The directory of fixture catalog `name` under test/fixtures/migrations. */
export function fixtureDir(name: string): string {
  return path.resolve(import.meta.dirname, '../../fixtures/migrations', name);
}

/** Table names in `schema`, sorted. */
export async function tablesIn(pool: Pool, schema: string): Promise<string[]> {
  const result = await pool.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
    [schema],
  );
  return result.rows.map((row) => row.table_name);
}

/** Versions in the schema's ledger, sorted numerically. */
export async function ledgerVersions(pool: Pool, schema: string): Promise<string[]> {
  const exists = await pool.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`${schema}.control_plane_ledger`]);
  if (!exists.rows[0]?.ok) return [];
  const result = await pool.query<{ version: string }>(
    `SELECT version FROM ${schema}.control_plane_ledger ORDER BY version::numeric`,
  );
  return result.rows.map((row) => row.version);
}

/** Column names of `schema.table`, in order. */
export async function columnsOf(pool: Pool, schema: string, table: string): Promise<string[]> {
  const result = await pool.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [schema, table],
  );
  return result.rows.map((row) => row.column_name);
}
