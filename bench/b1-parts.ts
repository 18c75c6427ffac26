/**
 * B1's tenant side, part by part: `npx tsx bench/b1-parts.ts [tenants per block] [rounds]`.
 *
 * What our one-trip move costs the tenant's PostgreSQL beyond the raw floor's transaction (the
 * catalog's SQL alone), measured as the backend's own CPU (utime + stime of the one connection in
 * /proc) on one connection, so no other process's work, no autovacuum and no checkpointer is
 * counted. Each block takes fresh marked empty schemas and rotates through the variants every
 * round; the table gives the median per tenant with min-max over the rounds:
 *
 * - whole moves: the raw transaction; migrateUp's one round trip without the ownership guard and
 *   fingerprint; with the guard; with the guard and the fingerprint read after COMMIT (what a
 *   worker sends with the default settings);
 * - the parts alone, each in a transaction of its own: the ownership guard, the ledger's creation
 *   and read (`ensureAndReadLedgerSql`) with the catalog's five rows, and the fingerprint read of
 *   a migrated schema (prepared statement, as the worker runs it).
 *
 * The parts are measured apart because whole moves vary by ±20 % from block to block (the DDL's
 * own cost), more than the parts add up to.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { schemaFingerprintRead } from '../src/fingerprints/read-schema.js';
import { ensureAndReadLedgerSql, insertLedgerEntriesSql } from '../src/migrations/ledger.js';
import { loadCatalog, migrateUp, schemaLockKey } from '../src/migrations/index.js';
import type { MigrationTarget } from '../src/migrations/index.js';
import { markOwnedSql, ownershipGuardSql } from '../src/tenants/ownership.js';
import { databaseUrl, dropDatabases, recreateDatabases } from './lib/stack.js';
import { summarize } from './lib/stats.js';

const BLOCK = Number(process.argv[2] ?? 200);
const ROUNDS = Number(process.argv[3] ?? 5);
const DB = `cp_bench_${process.pid}_parts`;
const DEPLOYMENT = '0b1a2c3d-0000-4000-8000-000000000001';

const catalog = await loadCatalog(path.resolve(import.meta.dirname, 'fixtures/catalog'));
const script = catalog.files.map((file) => file.upSql).join('\n');
const rows = catalog.files.map((file) => ({ file, executionMs: 0 }));

await recreateDatabases(DB);
// One connection for everything, so its backend's CPU is all this bench does.
const pool = new pg.Pool({ connectionString: databaseUrl(DB), max: 1, idleTimeoutMillis: 0 });
const pid = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

async function backendCpuMs(): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

let made = 0;
const locationOf = (schema: string) => ({
  isolation: 'SCHEMA' as const,
  databaseName: DB,
  schemaName: schema,
});
const targetOf = (schema: string, guard: boolean): MigrationTarget => ({
  schema,
  lockKey: schemaLockKey(DB, schema),
  ...(guard ? { guardSql: ownershipGuardSql(locationOf(schema), DEPLOYMENT) } : {}),
});

/** Fresh empty schemas marked as provisioning marks them; `migrated`: with the catalog and ledger. */
async function freshSchemas(migrated: boolean): Promise<string[]> {
  const schemas = Array.from({ length: BLOCK }, () => `parts_${String(made++).padStart(6, '0')}`);
  for (const schema of schemas) {
    await pool.query(`CREATE SCHEMA ${schema}; ${markOwnedSql(locationOf(schema), DEPLOYMENT)}`);
    if (migrated) await migrateUp(pool, targetOf(schema, false), catalog, { expectedVersion: null });
  }
  return schemas;
}

const move = (guard: boolean, fingerprint: boolean) => async (schema: string) => {
  const result = await migrateUp(pool, targetOf(schema, guard), catalog, {
    expectedVersion: null,
    ...(fingerprint ? { readAfterCommit: schemaFingerprintRead(schema) } : {}),
  });
  if (result.steps.length !== catalog.files.length) throw new Error(`${schema}: not moved on one trip`);
  if (fingerprint && !result.afterCommit?.ok) throw new Error(`${schema}: no fingerprint read`);
};

const variants: Record<string, { migrated?: boolean; run: (schema: string) => Promise<unknown> }> = {
  'raw transaction (the floor)': {
    run: (schema) => pool.query(`BEGIN; SET LOCAL search_path TO ${schema}; ${script}; COMMIT`),
  },
  'one trip, no guard, no fingerprint': { run: move(false, false) },
  'one trip, guard': { run: move(true, false) },
  'one trip, guard, fingerprint (default)': { run: move(true, true) },
  'part: ownership guard': {
    run: (schema) => pool.query(`BEGIN; ${ownershipGuardSql(locationOf(schema), DEPLOYMENT)}; COMMIT`),
  },
  'part: ledger created, read, five rows': {
    run: (schema) =>
      pool.query(
        `BEGIN; ${ensureAndReadLedgerSql({ schema })}; ${insertLedgerEntriesSql({ schema }, rows)}; COMMIT`,
      ),
  },
  'part: fingerprint read': {
    migrated: true,
    run: async (schema) => {
      const read = schemaFingerprintRead(schema);
      const client = await pool.connect();
      try {
        read.read(client, [await client.query(read.sql(client))].flat());
      } finally {
        client.release();
      }
    },
  },
};

const perTenant = new Map<string, number[]>();
const names = Object.keys(variants);
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of [...names.slice(round % names.length), ...names.slice(0, round % names.length)]) {
      const variant = variants[name]!;
      const schemas = await freshSchemas(variant.migrated ?? false);
      const before = await backendCpuMs();
      for (const schema of schemas) await variant.run(schema);
      const ms = ((await backendCpuMs()) - before) / BLOCK;
      perTenant.set(name, [...(perTenant.get(name) ?? []), ms]);
    }
    console.error(`round ${round + 1}/${ROUNDS} done`);
  }
} finally {
  await pool.end();
  await dropDatabases(DB);
}

const floor = summarize(perTenant.get(names[0]!)!).p50;
console.log(
  `| backend CPU per tenant, ${BLOCK} tenants × ${ROUNDS} rounds | median ms | min-max | × floor |`,
);
console.log('|---|---|---|---|');
for (const [name, values] of perTenant) {
  const s = summarize(values);
  const ratio = name.startsWith('part:') ? '' : `${(s.p50 / floor).toFixed(2)}`;
  console.log(`| ${name} | ${s.p50.toFixed(2)} | ${s.min.toFixed(2)}-${s.max.toFixed(2)} | ${ratio} |`);
}
