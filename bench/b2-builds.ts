/**
 * B2 for two builds at once: `npx tsx bench/b2-builds.ts <checkout A> <checkout B> [N]`, each
 * checkout built (`npm run build`) beforehand. Each build runs its own stack (api + worker from
 * its dist/, own databases and Redis prefix); createTenant → RUN_FINISHED on each and the raw
 * transaction rotate per tenant in one process, so both builds meet the same machine: on a shared
 * machine, runs of the bench minutes apart measure the load, not the change.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { migrateControlPlane } from '../src/migrations/index.js';
import { gql, subscribeSse } from './lib/graphql-client.js';
import {
  answers,
  databaseUrl,
  deleteRedisKeys,
  dropDatabases,
  freePort,
  recreateDatabases,
  imageEntrypoint,
} from './lib/stack.js';

const [dirA, dirB, count] = process.argv.slice(2);
if (!dirA || !dirB) throw new Error('usage: npx tsx bench/b2-builds.ts <checkout A> <checkout B> [N]');
const N = Number(count ?? 40);
const TOKEN = 'bench-admin-token-0123456789abcdef';
const CREATE_TENANT = `mutation($input: CreateTenantInput!) { createTenant(input: $input) {
  __typename ... on CreateTenantSuccess { tenant { id } provisioning { id } } ... on Error { message } } }`;
const RUN_EVENTS = `subscription($id: ID!) { migrationRunEvents(runId: $id) { type } }`;
const builds = { a: dirA, b: dirB };

async function stack(name: string, dir: string) {
  const cpDb = `cp_ab_${process.pid}_${name}`;
  const tenantDb = `${cpDb}_tenants`;
  await recreateDatabases(cpDb, tenantDb);
  const port = await freePort();
  const env = {
    DATABASE_URL: databaseUrl(cpDb),
    TENANT_DATABASE_URL: databaseUrl(tenantDb),
    REDIS_PREFIX: `ab-${name}-${process.pid}`,
    PORT: String(port),
    MIGRATIONS_DIR: `${dir}/bench/fixtures/catalog`,
    BOOTSTRAP_ADMIN_TOKEN: TOKEN,
    LOG_LEVEL: 'info',
    NODE_ENV: 'development',
  };
  const config = loadConfig(env);
  await migrateControlPlane(config.databaseUrl, config.controlPlaneMigrationsDir);
  const image = await imageEntrypoint();
  const procs = ['api', 'worker'].map((role) =>
    spawn(process.execPath, [...image.nodeFlags, 'dist/main.js', role], {
      cwd: dir,
      env: { ...process.env, ...image.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let log = '';
  procs[1]!.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  procs[0]!.stderr!.resume();
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if ((await answers(`${origin}/readyz`).catch(() => false)) && log.includes('"worker started"')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const endpoint = { url: `${origin}/graphql`, token: TOKEN };
  let next = 0;
  return {
    async sample() {
      const begin = performance.now();
      const data = await gql<{ createTenant: { provisioning?: { id: string } } }>(endpoint, CREATE_TENANT, {
        input: { name: `ab_${next++}` },
      });
      let last = '';
      await subscribeSse(
        endpoint,
        RUN_EVENTS,
        { id: data.createTenant.provisioning!.id },
        (d) => (last = (d.migrationRunEvents as { type: string }).type),
      );
      if (last !== 'RUN_FINISHED') throw new Error(`ended with ${last}`);
      return performance.now() - begin;
    },
    async stop() {
      for (const p of procs) p.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1500));
      await dropDatabases(cpDb, tenantDb);
      await deleteRedisKeys(config.redisUrl, env.REDIS_PREFIX);
    },
  };
}

const { loadCatalog } = await import('../src/migrations/index.js');
const catalog = await loadCatalog('bench/fixtures/catalog');
const rawDb = `cp_ab_${process.pid}_raw`;
await recreateDatabases(rawDb);
const raw = new pg.Client({ connectionString: databaseUrl(rawDb) });
await raw.connect();
let r = 0;
const rawSample = async () => {
  const b = performance.now();
  await raw.query(
    `BEGIN; CREATE SCHEMA t${r}; SET LOCAL search_path TO t${r++}; ${catalog.files.map((f) => f.upSql).join('\n;\n')}; COMMIT`,
  );
  return performance.now() - b;
};
const stacks = { a: await stack('a', builds.a), b: await stack('b', builds.b) };
const t = { a: [] as number[], b: [] as number[], raw: [] as number[] };
const loads: number[] = [loadavg()[0]!];
await stacks.a.sample();
await stacks.b.sample();
await rawSample();
for (let i = 0; i < N; i++) {
  const steps: [keyof typeof t, () => Promise<number>][] = [
    ['a', stacks.a.sample],
    ['b', stacks.b.sample],
    ['raw', rawSample],
  ];
  for (let k = 0; k < 3; k++) {
    const [key, fn] = steps[(i + k) % 3]!;
    t[key].push(await fn());
  }
}
loads.push(loadavg()[0]!);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log(`N=${N} load ${loads.map((l) => l.toFixed(1)).join('-')}`);
console.log(`p50 ms A ${med(t.a).toFixed(1)} B ${med(t.b).toFixed(1)} raw ${med(t.raw).toFixed(1)}`);
console.log(
  `p50 ratio to raw: A ${(med(t.a) / med(t.raw)).toFixed(2)} B ${(med(t.b) / med(t.raw)).toFixed(2)}`,
);
const perRound = (a: number[], b: number[]) => med(a.map((x, i) => x / b[i]!)).toFixed(3);
console.log(
  `per tenant (median): A/raw ${perRound(t.a, t.raw)} B/raw ${perRound(t.b, t.raw)} B/A ${perRound(t.b, t.a)}`,
);
await stacks.a.stop();
await stacks.b.stop();
await raw.end();
await dropDatabases(rawDb);
process.exit(0);
