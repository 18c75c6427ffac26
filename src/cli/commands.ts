/**
 * The migration CLI's commands. `COMMANDS` is the dispatch point: a command group maps to a
 * handler; `tenants` (fleet-wide runs through the queue) registers here when it lands.
 */
import type pg from 'pg';
import { createPgPool } from '../db/pg.js';
import { serversCommand } from './servers-command.js';
import { UsageError } from './usage-error.js';
import type { Config } from '../config.js';
import {
  CONTROL_PLANE_TARGET,
  DriftError,
  TransactionMode,
  ensureDatabase,
  getHistory,
  getStatus,
  loadCatalog,
  migrateControlPlane,
  migrateDown,
  migrateUp,
  previewUp,
  renderPlanSql,
  stampVersion,
} from '../migrations/index.js';
import { catalogCommand } from './catalog-command.js';
import { formatHistory, formatMigrateResult, formatStamp, formatStatus } from './format.js';
import { recordCachedVersion, resolveTenantTarget } from './tenant-target.js';
import { adoptCommand, driftCommand } from './drift-command.js';
import { secretsCommand } from './secrets-reseal.js';
import { tenantsUpCommand } from './tenants-up.js';
import { tokenCommand } from './token-command.js';
import { backupCommand, restoreCommand } from './backup-command.js';

/** The parsed command line a handler receives. */
export interface CommandInput {
  readonly action: string | undefined;
  readonly tenant?: string | undefined;
  readonly to?: string | undefined;
  readonly mode?: string | undefined;
  readonly environment?: string | undefined;
  readonly concurrency?: string | undefined;
  readonly 'dry-run'?: boolean | undefined;
  readonly 'with-worker'?: boolean | undefined;
  readonly name?: string | undefined;
  readonly role?: string | undefined;
  readonly dir?: string | undefined;
  readonly url?: string | undefined;
  readonly 'max-concurrent'?: string | undefined;
  readonly pattern?: string | undefined;
  readonly server?: string | undefined;
  readonly source?: string | undefined;
  readonly 'name-prefix'?: string | undefined;
  readonly 'version-map'?: string | undefined;
  readonly backup?: string | undefined;
}

/** Where a command writes; the entry point passes process streams, tests may capture. */
export interface CommandIo {
  readonly out: (line: string) => void;
}

/** A command group's handler. */
export type CommandHandler = (config: Config, input: CommandInput, io: CommandIo) => Promise<void>;

/** The command groups, by first argument. */
export const COMMANDS: Readonly<Record<string, CommandHandler>> = {
  'control-plane': controlPlaneCommand,
  tenant: tenantCommand,
  plan: planCommand,
  tenants: (config, input, io) => tenantsUpCommand(config, input, io),
  secrets: (config, input, io) => secretsCommand(config, input, io),
  token: tokenCommand,
  catalog: catalogCommand,
  servers: serversCommand,
  drift: (config, input, io) => driftCommand(config, input, io),
  adopt: (config, input, io) => adoptCommand(config, input, io),
  backup: backupCommand,
  restore: restoreCommand,
};

async function controlPlaneCommand(config: Config, input: CommandInput, io: CommandIo): Promise<void> {
  const label = 'control plane';
  if (input.action === 'up') {
    const result = await migrateControlPlane(config.databaseUrl, config.controlPlaneMigrationsDir, {
      lockTimeoutMs: Math.max(config.lockTimeoutMs, 30_000),
      onApplied: (step) => io.out(`  applied ${step.version}_${step.name} (${step.executionMs} ms)`),
    });
    io.out(formatMigrateResult(label, result, 'up'));
    return;
  }
  if (input.action === 'status') {
    const catalog = await loadCatalog(config.controlPlaneMigrationsDir);
    await withPool(config.databaseUrl, async (pool) =>
      io.out(formatStatus(label, await getStatus(pool, CONTROL_PLANE_TARGET, catalog))),
    );
    return;
  }
  throw new UsageError(`unknown action "control-plane ${input.action ?? ''}": use up or status`);
}

async function tenantCommand(config: Config, input: CommandInput, io: CommandIo): Promise<void> {
  const tenant = await resolveTenantTarget(config, requireTenant(input));
  const { databaseUrl, target } = tenant;
  const catalog = await loadCatalog(config.migrationsDir);
  const label = `schema ${target.schema}`;
  const mode = parseMode(input.mode);
  const onApplied = (step: { version: string; name: string; executionMs: number }) =>
    io.out(
      `  ${input.action === 'down' ? 'reverted' : 'applied'} ${step.version}_${step.name} (${step.executionMs} ms)`,
    );
  switch (input.action) {
    case 'up':
      await ensureDatabase(databaseUrl);
      return withPool(databaseUrl, async (pool) => {
        const result = await migrateUp(pool, target, catalog, {
          toVersion: input.to ?? null,
          mode,
          lockTimeoutMs: config.lockTimeoutMs,
          onApplied,
        });
        await recordCachedVersion(config, tenant, result.toVersion);
        io.out(formatMigrateResult(label, result, 'up'));
      });
    case 'down': {
      if (!input.to)
        throw new UsageError('tenant down needs --to <version> (use --to 0 to revert everything)');
      const toVersion = input.to;
      return withPool(databaseUrl, async (pool) => {
        const result = await migrateDown(pool, target, catalog, {
          toVersion,
          mode,
          lockTimeoutMs: config.lockTimeoutMs,
          onApplied,
        });
        await recordCachedVersion(config, tenant, result.toVersion);
        io.out(formatMigrateResult(label, result, 'down'));
      });
    }
    case 'stamp': {
      if (!input.to) throw new UsageError('tenant stamp needs --to <version>');
      const version = input.to;
      await ensureDatabase(databaseUrl);
      return withPool(databaseUrl, async (pool) => {
        const stamped = await stampVersion(pool, target, catalog, version, config);
        await recordCachedVersion(config, tenant, stamped.toVersion);
        io.out(formatStamp(label, stamped));
      });
    }
    case 'status':
      return withPool(databaseUrl, async (pool) =>
        io.out(formatStatus(label, await getStatus(pool, target, catalog))),
      );
    case 'history':
      return withPool(databaseUrl, async (pool) =>
        io.out(formatHistory(label, await getHistory(pool, target, catalog))),
      );
    default:
      throw new UsageError(
        `unknown action "tenant ${input.action ?? ''}": use up, down, status, stamp or history`,
      );
  }
}

async function planCommand(config: Config, input: CommandInput, io: CommandIo): Promise<void> {
  const { databaseUrl, target } = await resolveTenantTarget(config, requireTenant(input));
  const catalog = await loadCatalog(config.migrationsDir);
  await withPool(databaseUrl, async (pool) => {
    const plan = await previewUp(pool, target, catalog, input.to ?? null);
    if (plan.drift.length > 0) throw new DriftError(target.schema, plan.drift);
    for (const warning of catalog.warnings) io.out(`-- warning: ${warning.message}`);
    io.out(renderPlanSql(plan, { schema: target.schema, mode: parseMode(input.mode) }).trimEnd());
  });
}

function requireTenant(input: CommandInput): string {
  if (!input.tenant) throw new UsageError('--tenant <name> is required');
  return input.tenant;
}

function parseMode(mode: string | undefined): TransactionMode {
  if (mode === undefined || mode === 'per-tenant') return TransactionMode.PER_TENANT;
  if (mode === 'per-migration') return TransactionMode.PER_MIGRATION;
  throw new UsageError(`unknown --mode "${mode}": use per-tenant or per-migration`);
}

async function withPool<T>(url: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = createPgPool({ connectionString: url, max: 2, applicationName: 'tenant-control-plane-cli' });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}
