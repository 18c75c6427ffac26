/**
 * `servers list` and `servers add --name <n> --url <url> [--max-concurrent N]`: the database
 * servers tenants live on, straight in the control plane. `add` connects and checks privileges
 * first, like registerDatabaseServer; the URL is sealed and never printed. Audited as `cli`.
 */
import os from 'node:os';
import { createAuditLog } from '../audit/audit-log.js';
import type { Config } from '../config.js';
import { createSecretBoxFromConfig } from '../crypto/secret-box.js';
import { createControlPlaneDb, createControlPlanePool } from '../db/control-plane.js';
import { AppError } from '../errors.js';
import { createLogger } from '../logger.js';
import { migrateControlPlane } from '../migrations/index.js';
import { createServerService, type DatabaseServerWithCount } from '../servers/server-service.js';
import { UsageError } from './usage-error.js';

/** The parsed command line `servers` reads (a subset of the CLI's CommandInput). */
export interface ServersCommandInput {
  readonly action: string | undefined;
  readonly name?: string | undefined;
  readonly url?: string | undefined;
  readonly 'max-concurrent'?: string | undefined;
}

/** Where the command prints. */
export interface ServersCommandIo {
  readonly out: (line: string) => void;
}

/** The `servers` command group. */
export async function serversCommand(
  config: Config,
  input: ServersCommandInput,
  io: ServersCommandIo,
): Promise<void> {
  if (input.action !== 'list' && input.action !== 'add') {
    throw new UsageError(`unknown action "servers ${input.action ?? ''}": use list or add`);
  }
  let budget: number | undefined;
  if (input.action === 'add') {
    if (!input.name || !input.url) throw new UsageError('servers add needs --name <name> and --url <url>');
    if (input['max-concurrent'] !== undefined) {
      budget = Number(input['max-concurrent']);
      if (!/^\d+$/.test(input['max-concurrent']) || budget < 1) {
        throw new UsageError('--max-concurrent must be a positive integer');
      }
    }
  }
  await migrateControlPlane(config.databaseUrl, config.controlPlaneMigrationsDir);
  const db = createControlPlaneDb(config.databaseUrl, { maxConnections: 2 });
  const pool = createControlPlanePool(config.databaseUrl, {
    maxConnections: 2,
    applicationName: 'tenant-control-plane-cli',
  });
  const logger = createLogger(config.logLevel === 'debug' ? 'debug' : 'warn');
  try {
    const servers = createServerService({ db, pool, secretBox: createSecretBoxFromConfig(config), logger });
    // As the service's start does: the list always shows the default server.
    await servers.ensureDefaultServer(config.tenantDatabaseUrl, config.defaultServerBudget);
    if (input.action === 'add') {
      const actor = `cli:${os.userInfo().username}`;
      const audit = createAuditLog({ db, logger });
      const entry = {
        actor,
        actorKind: 'cli',
        action: 'registerDatabaseServer',
        targetType: 'DatabaseServer',
        input: { name: input.name, maxConcurrentMigrations: budget ?? null },
      } as const;
      const server = await servers
        .registerDatabaseServer({
          name: input.name!,
          connectionString: input.url!,
          maxConcurrentMigrations: budget ?? null,
        })
        .catch(async (error: unknown) => {
          await audit.record({
            ...entry,
            outcome: error instanceof AppError ? error.code : 'INTERNAL',
            error: error instanceof Error ? error.message : String(error),
          });
          throw error;
        });
      await audit.record({ ...entry, targetId: server.id, outcome: 'success' });
      io.out(
        `registered ${server.name} (${server.host}:${server.port}, ${server.maxConcurrentMigrations} at once)`,
      );
      return;
    }
    for (const line of formatServers(await servers.listDatabaseServers())) io.out(line);
  } finally {
    await pool.end();
    await db.$disconnect();
  }
}

/** One header line and one line per server: name, host:port, placement, budget, tenants. */
export function formatServers(servers: readonly DatabaseServerWithCount[]): string[] {
  const rows = servers.map((server) => [
    server.name,
    `${server.host}:${server.port}`,
    server.acceptingTenants ? 'yes' : 'no',
    String(server.maxConcurrentMigrations),
    String(server.tenantCount),
  ]);
  const header = ['NAME', 'HOST', 'ACCEPTING', 'MAX CONCURRENT', 'TENANTS'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}
