/**
 * The real parts a fault suite breaks on purpose: a PostgreSQL cluster of its own (so restarting it
 * disturbs no other test file), a Redis server of its own (restarted with its data lost), a TCP
 * proxy in front of the tenant server (cut to make it unreachable), and the service's processes
 * (`src/main.ts api|worker`), killed and restarted at will.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLUSTER_NAME = 'chaos';

/** Whether this machine has Debian's cluster tools, which the suite needs to own a cluster. */
export function hasClusterTools(): boolean {
  return existsSync('/usr/bin/pg_ctlcluster') && existsSync('/etc/postgresql');
}

export interface ChaosCluster {
  readonly port: number;
  url(database?: string): string;
  /** `pg_ctlcluster … restart -m fast`: every session is terminated, as in a failover. */
  restart(): Promise<void>;
}

/** Creates (once per machine) and starts the suite's own cluster, trust auth on 127.0.0.1. */
export async function ensureChaosCluster(
  port = Number(process.env.CHAOS_PG_PORT ?? 5434),
): Promise<ChaosCluster> {
  const version = readdirSync('/etc/postgresql')
    .sort((a, b) => Number(a) - Number(b))
    .at(-1)!;
  const ctl = (...args: string[]) =>
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, CLUSTER_NAME, ...args], {
      stdio: 'pipe',
      timeout: 60_000,
    });
  if (!existsSync(`/etc/postgresql/${version}/${CLUSTER_NAME}`)) {
    execFileSync(
      'pg_createcluster',
      [
        version,
        CLUSTER_NAME,
        '--port',
        String(port),
        '--start-conf',
        'manual',
        // Four processes with pools of their own, plus the suite's checks.
        '-o',
        'max_connections=300',
        '--',
        '--auth=trust',
      ],
      { stdio: 'pipe', timeout: 120_000 },
    );
  }
  const url = (database = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  if (!(await answers(url()))) ctl('start');
  await waitFor(() => answers(url()), 30_000, 'the chaos PostgreSQL cluster to answer');
  return {
    port,
    url,
    async restart() {
      ctl('restart', '-m', 'fast');
      await waitFor(() => answers(url()), 30_000, 'the chaos PostgreSQL cluster to come back');
    },
  };
}

export interface ChaosRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL, then a fresh server on the same port: every key is gone. */
  restartEmpty(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server child on a free port, persisting nothing. */
export async function startChaosRedis(): Promise<ChaosRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    await waitFor(() => redisAnswers(port), 15_000, 'the chaos Redis to answer');
  };
  const kill = async () => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restartEmpty() {
      await kill();
      await start();
    },
    stop: kill,
  };
}

export interface ChaosProxy {
  readonly port: number;
  /** Drops every connection and refuses new ones until `restore`. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:`targetPort` that the suite can cut. */
export async function startProxy(targetPort: number): Promise<ChaosProxy> {
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      cut = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ServiceProcess {
  readonly role: 'api' | 'worker';
  readonly child: ChildProcess;
  /** The port the api listens on (api role). */
  readonly port: number | null;
  /** The process's log lines so far (stderr). */
  readonly lines: string[];
  /** Resolves with the exit code or signal once the process has exited. */
  readonly exited: Promise<string>;
  isAlive(): boolean;
}

/** Starts `src/main.ts <role>` with `env`; resolves once it listens (api) or takes jobs (worker). */
export async function startService(
  role: 'api' | 'worker',
  env: Record<string, string>,
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts'), role], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: string[] = [];
  let port: number | null = null;
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? String(code))),
  );
  const ready = new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (lines.length > 2000) lines.shift();
        const url = /"msg":"listening".*?"url":"http:\/\/[^:]+:(\d+)\//.exec(line);
        if (url) {
          port = Number(url[1]);
          resolve();
        }
        if (role === 'worker' && line.includes('"msg":"worker started"')) resolve();
      }
    });
    void exited.then((how) =>
      reject(new Error(`${role} exited during start (${how}): ${lines.slice(-5).join('\n')}`)),
    );
  });
  await ready;
  return {
    role,
    child,
    get port() {
      return port;
    },
    lines,
    exited,
    isAlive: () => child.exitCode === null && child.signalCode === null,
  };
}

/** Sends `signal` and waits for the exit (SIGKILL after `graceMs` if it does not go). */
export async function stopService(
  service: ServiceProcess,
  signal: NodeJS.Signals,
  graceMs = 30_000,
): Promise<string> {
  if (!service.isAlive()) return service.exited;
  service.child.kill(signal);
  const timer = setTimeout(() => service.child.kill('SIGKILL'), graceMs);
  try {
    return await service.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it resolves true. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Runs `fn` on a fresh connection, retried while the server restarts. */
export async function withRetriedConnection<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await fn(client);
    } catch (error) {
      if (!isConnectionLoss(error)) throw error;
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  throw lastError;
}

function isConnectionLoss(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return true; // connection-level failures carry no SQLSTATE
  return code.startsWith('08') || code.startsWith('57P') || code.startsWith('E');
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function redisAnswers(port: number): Promise<boolean> {
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
