import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, type AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import pg from 'pg';

const SERVER_URL = process.env.BENCH_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** A database server URL with the database replaced. */
export function databaseUrl(database: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Drops (if present) and creates each database, empty. */
export async function recreateDatabases(...names: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  try {
    for (const name of names) {
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    }
  } finally {
    await admin.end();
  }
}

/** Drops each database if present. */
export async function dropDatabases(...names: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  try {
    for (const name of names)
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * Brings the disk to the same state before each measured segment: a CHECKPOINT writes
 * PostgreSQL's dirty buffers, then `sync` makes the kernel write back what is still pending,
 * including the file deletions of the databases the previous segment dropped (thousands of
 * files; on a filesystem mounted with `discard` each one also trims). Without it, the segment
 * after a large drop paid for that write-back in its commit fsyncs.
 */
export async function settle(): Promise<void> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  await client.query('CHECKPOINT').finally(() => client.end());
  await promisify(execFile)('sync');
}

/**
 * A TCP port free on 127.0.0.1 right now. The bench's API listens on it: a fixed port could be
 * held by another bench on the same machine, whose /readyz would then answer for ours.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ServiceProcess {
  readonly role: string;
  readonly child: ChildProcess;
  /** Peak resident set size so far, in MiB (VmHWM of /proc). */
  peakRssMb(): Promise<number>;
  /** The last 20,000 characters the process wrote to stderr (its log). */
  logTail(): string;
  /** CPU time (user + system) used so far, in seconds. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts the compiled service (`dist/main.js <role>`, as the image runs it; `npm run build` first)
 * as its own Node process and waits until `ready(stderrSoFar)` says so.
 */
export async function startService(
  role: 'api' | 'worker' | 'all',
  env: Record<string, string>,
  ready: (log: string) => Promise<boolean>,
): Promise<ServiceProcess> {
  // BENCH_PROFILE=1 writes a V8 CPU profile of each service to bench/results/profiles/.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=bench/results/profiles'] : [];
  const image = await imageEntrypoint();
  const child = spawn(process.execPath, [...profile, ...image.nodeFlags, 'dist/main.js', role], {
    env: { ...process.env, ...image.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${role} exited with ${child.exitCode}:\n${log}`);
    if (await ready(log).catch(() => false)) break;
    if (Date.now() > deadline) throw new Error(`${role} not ready after 60 s:\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    role,
    child,
    logTail: () => log,
    async peakRssMb() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
      return kb / 1024;
    },
    async cpuSeconds() {
      const fields = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
      // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** True when an HTTP GET answers 2xx. */
export async function answers(url: string): Promise<boolean> {
  const response = await fetch(url);
  return response.ok;
}

/** Deletes every Redis key of a deployment prefix (queues use `{prefix}`, pub/sub leaves none). */
export async function deleteRedisKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    for (const pattern of [`{${prefix}}*`, `${prefix}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * CPU seconds used so far by the PostgreSQL backends connected to each database (read from
 * /proc: backends show `postgres: <cluster>: <user> <database> ...` as their command line).
 * Backends that already exited are not counted, so call it while the pools are still open.
 */
export async function postgresCpuByDatabase(): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  for (const { database, seconds } of (await postgresCpuByBackend()).values())
    totals.set(database, (totals.get(database) ?? 0) + seconds);
  return totals;
}

/**
 * CPU seconds the whole PostgreSQL server of the bench has used so far: its postmaster, every live
 * child (backends, checkpointer, WAL writer, autovacuum) and every child that has exited (reaped
 * into the postmaster's cutime and cstime). Unlike the per-backend figures it also counts the
 * connections a baseline closed before the second sample, so the floors and the control plane can
 * be compared on it.
 */
export async function postgresServerCpuSeconds(): Promise<number> {
  postmasterPid ??= findPostmasterPid();
  const postmaster = await postmasterPid;
  const own = statFields(await readFile(`/proc/${postmaster}/stat`, 'utf8'));
  // utime, stime, cutime, cstime (fields 14-17 of proc(5)).
  let ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(own[i]), 0);
  const { readdir } = await import('node:fs/promises');
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const fields = statFields(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''));
    if (Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

let postmasterPid: Promise<number> | undefined;

// The parent of one of its backends.
async function findPostmasterPid(): Promise<number> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return Number(statFields(await readFile(`/proc/${rows[0]!.pid}/stat`, 'utf8'))[1]);
  } finally {
    await client.end();
  }
}

// The fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, [11] utime, [12] stime.
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
}

/** CPU seconds used so far by each live PostgreSQL backend (by pid), with its database. */
export async function postgresCpuByBackend(): Promise<Map<number, { database: string; seconds: number }>> {
  const backends = new Map<number, { database: string; seconds: number }>();
  const { readdir } = await import('node:fs/promises');
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const match = /^postgres: [^:]+: \S+ (\S+) /.exec(cmdline.replace(/\0/g, ' '));
    if (!match) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.split(') ')[1]?.split(' ') ?? [];
    const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
    if (Number.isFinite(seconds)) backends.set(Number(pid), { database: match[1] as string, seconds });
  }
  return backends;
}

/**
 * The node flags and environment the Dockerfile runs the service with, so the benchmarks measure
 * the process as deployed: `ENTRYPOINT ["node", <flags>..., "dist/main.js"]` and its `ENV` lines
 * that tune the runtime (MALLOC_ARENA_MAX).
 */
export async function imageEntrypoint(): Promise<{ nodeFlags: string[]; env: Record<string, string> }> {
  const dockerfile = await readFile('Dockerfile', 'utf8');
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  const args = entrypoint ? (JSON.parse(entrypoint) as string[]) : ['node', 'dist/main.js'];
  const nodeFlags = args.slice(1, args.indexOf('dist/main.js'));
  const arenas = /MALLOC_ARENA_MAX=(\d+)/.exec(dockerfile)?.[1];
  return { nodeFlags, env: arenas ? { MALLOC_ARENA_MAX: arenas } : {} };
}
