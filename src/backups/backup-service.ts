/**
 * Backups of tenants and restores from them (issue 15), with PostgreSQL's own tools: a custom-format
 * pg_dump of the tenant's schema (SCHEMA isolation) or database (DATABASE isolation), recorded in
 * `tenant_backups` with its size and SHA-256, and a restore that never leaves a half-restored
 * tenant:
 * - SCHEMA: one transaction (psql --single-transaction) under the tenant's advisory lock renames
 *   the live schema aside, replays the dump, checks the restored ledger and version, writes this
 *   deployment's ownership marker and drops the old schema. Any error rolls all of it back.
 * - DATABASE: the dump is restored into a new database, checked and marked there, and only then
 *   swapped in by renaming both databases in one transaction; the old one is dropped after.
 * The file's checksum is verified before anything starts: a changed file changes nothing.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { withDatabase, type Config } from '../config.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import { quoteDatabase, quoteSchema, withConnection } from '../db/pg.js';
import type { TenantPools } from '../db/tenant-pools.js';
import { NotFoundError, PreconditionFailedError } from '../errors.js';
import type { TenantBackup, TenantDatabase } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import {
  ledgerTableOf,
  type LedgerLocation,
  advisoryLockKey,
  highestVersion,
  readLedger,
  withTargetTransaction,
} from '../migrations/index.js';
import { ledgerTargetOf } from '../tenants/ledger-target.js';
import { assertOwned, ownershipMarker } from '../tenants/ownership.js';
import type { BackupStorage } from './backup-storage.js';
import { runPgTool, toolConnectionOf } from './pg-commands.js';
import { resolvePgTools, type PgTools } from './pg-tools.js';

export interface BackupServiceDeps {
  readonly db: ControlPlaneDb;
  readonly storage: BackupStorage;
  readonly secretBox: SecretBox;
  readonly tenantPools: TenantPools;
  /** This deployment's id: restored schemas and databases carry its ownership marker. */
  readonly deploymentId: () => Promise<string>;
  readonly config: Pick<
    Config,
    'lockTimeoutMs' | 'pgClientBinDir' | 'backupRetentionDays' | 'backupKeepLast' | 'ledgerTable'
  >;
  readonly logger: Logger;
}

/** Why a backup was taken, shown as TenantBackup.reason. */
export interface BackupRequest {
  readonly reason: string;
  readonly runId?: string | null;
}

/** Creates the backup service over the given clients. */
export function createBackupService(deps: BackupServiceDeps) {
  const { db, storage, secretBox, tenantPools, deploymentId, config, logger } = deps;
  const toolsByMajor = new Map<number, Promise<PgTools>>();

  /**
   * Dumps one tenant database into the storage and records it. Holds the tenant's advisory lock
   * (the engine's) while pg_dump runs, so the recorded version is the dumped one. Throws, with
   * nothing recorded and the tenant untouched, when the tools are missing or pg_dump fails.
   */
  async function backupDatabase(database: TenantDatabase, request: BackupRequest): Promise<TenantBackup> {
    const backup = await backupIfPresent(database, request);
    if (!backup) {
      throw new PreconditionFailedError(
        `The tenant's ${database.isolation === 'DATABASE' ? 'database' : 'schema'} does not exist; nothing to back up`,
      );
    }
    return backup;
  }

  /** Like backupDatabase, but null when the tenant's schema or database does not exist. */
  async function backupIfPresent(
    database: TenantDatabase,
    request: BackupRequest,
  ): Promise<TenantBackup | null> {
    const connectionString = secretBox.openConnectionString(database);
    const pool = tenantPools.poolFor(connectionString);
    const target = ledgerTargetOf(database, config.ledgerTable);
    const id = randomUUID();
    const storageKey = `${database.tenantId}/${id}.dump`;
    let dumped;
    try {
      dumped = await withTargetTransaction(pool, target, config.lockTimeoutMs, async (client) => {
        if (database.isolation === 'SCHEMA') {
          const present = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [
            target.schema,
          ]);
          if (present.rowCount === 0) return null;
        }
        const tools = await toolsFor(client);
        const version = highestVersion(await readLedger(client, target));
        const args = ['--format=custom', '--no-password'];
        if (database.isolation === 'SCHEMA') args.push(`--schema=${quoteSchema(target.schema)}`);
        const connection = toolConnectionOf(connectionString);
        const stored = await storage.write(storageKey, (temp) =>
          runPgTool(tools.pgDump, [...args, `--file=${temp}`, `--dbname=${connection.url}`], connection),
        );
        return { tools, stored, version };
      });
    } catch (error) {
      // A DATABASE-isolated tenant whose database does not exist.
      if ((error as { code?: unknown }).code === '3D000' && database.isolation === 'DATABASE') return null;
      throw error;
    }
    if (!dumped) return null;
    const { tools, stored, version } = dumped;
    try {
      return await db.tenantBackup.create({
        data: {
          id,
          tenantId: database.tenantId,
          tenantDatabaseId: database.id,
          sizeBytes: BigInt(stored.sizeBytes),
          sha256: stored.sha256,
          schemaVersion: version,
          reason: request.reason.slice(0, 255),
          storageKey,
          serverMajor: tools.major,
          runId: request.runId ?? null,
        },
      });
    } catch (error) {
      // A file without its row would never be pruned.
      await storage.remove(storageKey);
      throw error;
    }
  }

  /** Backs up every database of a tenant (one today); NotFoundError for an unknown or deleted tenant. */
  async function backupTenant(tenantId: string, request: BackupRequest): Promise<TenantBackup[]> {
    const tenant = await db.tenant.findUnique({
      where: { tenantId },
      include: { databases: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] } },
    });
    if (!tenant || tenant.deletedAt) throw new NotFoundError(`No such tenant: ${tenantId}`);
    if (tenant.databases.length === 0) throw new PreconditionFailedError('The tenant has no database');
    const backups: TenantBackup[] = [];
    for (const database of tenant.databases) backups.push(await backupDatabase(database, request));
    logger.info('tenant backed up', { tenantId, backups: backups.map((b) => b.id) });
    return backups;
  }

  /** The backups of a tenant whose files are kept, newest first. */
  function listBackups(tenantId: string): Promise<TenantBackup[]> {
    return db.tenantBackup.findMany({
      where: { tenantId, deletedAt: null },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    });
  }

  /**
   * Restores a tenant database from a backup (see the module comment). NotFoundError for an unknown
   * backup or a removed file; PreconditionFailedError when its file changed (checksum) or the tools
   * do not match the server, with nothing changed. A deleted tenant comes back ACTIVE. The tenant's
   * cached version becomes the backup's. `checkIdle` (direct use) refuses while a run holds it.
   */
  async function restoreBackup(
    backupId: string,
    options: { checkIdle?: boolean; viaRun?: boolean } = {},
  ): Promise<TenantBackup> {
    const backup = await db.tenantBackup.findUnique({ where: { id: backupId } });
    if (!backup || backup.deletedAt) throw new NotFoundError(`No such backup: ${backupId}`);
    const database = await db.tenantDatabase.findUniqueOrThrow({ where: { id: backup.tenantDatabaseId } });
    if (options.checkIdle) await assertIdle(database);
    await verifyFile(backup);
    const connectionString = secretBox.openConnectionString(database);
    const maintenance = withDatabase(connectionString, 'postgres');
    const tools = await withConnection(maintenance, (client) => toolsFor(client));
    const owner = await deploymentId();
    await storage.withLocalFile(backup.storageKey, (file) =>
      withScratchDir(async (dir) => {
        // pg_restore writes the dump as SQL first: a dump it cannot read fails before any change.
        const script = path.join(dir, 'restore.sql');
        await runPgTool(tools.pgRestore, ['--no-owner', `--file=${script}`, file], null);
        if (database.isolation === 'SCHEMA') {
          await restoreSchema(database, backup, connectionString, tools, dir, script, owner);
        } else {
          await restoreDatabase(database, backup, connectionString, tools, dir, script, owner);
        }
      }),
    );
    await db.$transaction([
      // A run's finish records the version itself, over the MIGRATING its claim set.
      ...(options.viaRun
        ? []
        : [
            db.tenantDatabase.update({
              where: { id: database.id },
              data: { schemaVersion: backup.schemaVersion, status: 'ACTIVE' as const, lastError: null },
            }),
          ]),
      db.tenant.updateMany({
        where: { tenantId: backup.tenantId, deletedAt: { not: null } },
        data: { deletedAt: null, status: 'ACTIVE' },
      }),
    ]);
    logger.info('tenant restored from backup', { tenantId: backup.tenantId, backupId });
    return backup;
  }

  /**
   * Checks that a backup exists and its file is whole: NotFoundError for an unknown backup or a
   * missing file, PreconditionFailedError when the file's size or SHA-256 differ from the record.
   */
  async function verifyBackup(backupId: string): Promise<TenantBackup> {
    const backup = await db.tenantBackup.findUnique({ where: { id: backupId } });
    if (!backup || backup.deletedAt) throw new NotFoundError(`No such backup: ${backupId}`);
    await verifyFile(backup);
    return backup;
  }

  async function verifyFile(backup: TenantBackup): Promise<void> {
    const stored = await storage.inspect(backup.storageKey);
    if (!stored)
      throw new NotFoundError(`The file of backup ${backup.id} is missing from the backup storage`);
    if (stored.sha256 !== backup.sha256 || stored.sizeBytes !== Number(backup.sizeBytes)) {
      throw new PreconditionFailedError(
        `The file of backup ${backup.id} changed since it was written (SHA-256 ${stored.sha256}, recorded ${backup.sha256}); refusing to restore it, nothing was changed`,
      );
    }
  }

  async function restoreSchema(
    database: TenantDatabase,
    backup: TenantBackup,
    connectionString: string,
    tools: PgTools,
    dir: string,
    script: string,
    owner: string,
  ): Promise<void> {
    const target = ledgerTargetOf(database, config.ledgerTable);
    const schema = quoteSchema(target.schema);
    const aside = quoteSchema(asideName(target.schema));
    const ownership = await assertOwned(tenantPools.poolFor(connectionString), database, owner);
    const before = path.join(dir, 'before.sql');
    const after = path.join(dir, 'after.sql');
    await writeFile(
      before,
      [
        `SET lock_timeout = ${Math.max(1, Math.floor(config.lockTimeoutMs))};`,
        `SELECT pg_advisory_xact_lock(${advisoryLockKey(target.lockKey).toString()}::bigint);`,
        ownership === 'absent' ? '' : `ALTER SCHEMA ${schema} RENAME TO ${aside};`,
        '',
      ].join('\n'),
    );
    await writeFile(
      after,
      [
        ledgerCheckSql(target, backup.schemaVersion),
        `COMMENT ON SCHEMA ${schema} IS ${pg.escapeLiteral(ownershipMarker(owner))};`,
        ownership === 'absent' ? '' : `DROP SCHEMA ${aside} CASCADE;`,
        '',
      ].join('\n'),
    );
    const connection = toolConnectionOf(connectionString);
    await runPgTool(tools.psql, psqlArgs(connection.url, [before, script, after]), connection);
  }

  async function restoreDatabase(
    database: TenantDatabase,
    backup: TenantBackup,
    connectionString: string,
    tools: PgTools,
    dir: string,
    script: string,
    owner: string,
  ): Promise<void> {
    const live = database.databaseName;
    const fresh = asideName(live);
    const old = asideName(live);
    const maintenance = withDatabase(connectionString, 'postgres');
    const existing = await withConnection(maintenance, async (client) => {
      const ownership = await assertOwned(client, database, owner);
      await client.query(`CREATE DATABASE ${quoteDatabase(fresh)}`);
      return ownership;
    });
    try {
      const after = path.join(dir, 'after.sql');
      await writeFile(
        after,
        [
          ledgerCheckSql(ledgerTargetOf(database, config.ledgerTable), backup.schemaVersion),
          `COMMENT ON DATABASE ${quoteDatabase(fresh)} IS ${pg.escapeLiteral(ownershipMarker(owner))};`,
          '',
        ].join('\n'),
      );
      const connection = toolConnectionOf(withDatabase(connectionString, fresh));
      await runPgTool(tools.psql, psqlArgs(connection.url, [script, after]), connection);
      await withConnection(maintenance, async (client) => {
        await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(config.lockTimeoutMs))}`);
        await client.query('BEGIN');
        if (existing !== 'absent') {
          // Renaming needs the database free of sessions (this process's pools reconnect later).
          await client.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [live],
          );
          await client.query(`ALTER DATABASE ${quoteDatabase(live)} RENAME TO ${quoteDatabase(old)}`);
        }
        await client.query(`ALTER DATABASE ${quoteDatabase(fresh)} RENAME TO ${quoteDatabase(live)}`);
        await client.query('COMMIT');
      });
    } catch (error) {
      await withConnection(maintenance, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(fresh)} WITH (FORCE)`),
      );
      throw error;
    }
    if (existing !== 'absent') {
      await withConnection(maintenance, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(old)} WITH (FORCE)`),
      );
    }
  }

  /**
   * Removes the files of backups past retention: older than BACKUP_RETENTION_DAYS and not among
   * the BACKUP_KEEP_LAST newest of their tenant; never the newest backup of a deleted tenant (only
   * purgeTenantBackups removes that). Returns how many were removed.
   */
  async function pruneBackups(now: Date = new Date()): Promise<number> {
    if (config.backupRetentionDays === 0) return 0;
    const cutoff = new Date(now.getTime() - config.backupRetentionDays * 86_400_000);
    const expired = await db.$queryRaw<{ id: string; storage_key: string }[]>`
      SELECT b.id::text, b.storage_key FROM (
        SELECT b.*, row_number() OVER (PARTITION BY b.tenant_id ORDER BY b.created_at DESC, b.id DESC) AS rank
        FROM control_plane.tenant_backups b WHERE b.deleted_at IS NULL
      ) b JOIN control_plane.tenants t ON t.tenant_id = b.tenant_id
      WHERE b.created_at < ${cutoff} AND b.rank > ${config.backupKeepLast}
        AND NOT (t.deleted_at IS NOT NULL AND b.rank = 1)`;
    for (const row of expired) await removeBackup(row.id, row.storage_key);
    if (expired.length > 0) logger.info('expired backups removed', { count: expired.length });
    return expired.length;
  }

  /** Removes every backup file of a tenant, the last one of a deleted tenant included. */
  async function purgeTenantBackups(tenantId: string): Promise<number> {
    const backups = await db.tenantBackup.findMany({ where: { tenantId, deletedAt: null } });
    for (const backup of backups) await removeBackup(backup.id, backup.storageKey);
    return backups.length;
  }

  // The row is marked first: a crash in between leaves a file no row points to, never a row
  // pointing to no file.
  async function removeBackup(id: string, storageKey: string): Promise<void> {
    await db.tenantBackup.update({ where: { id }, data: { deletedAt: new Date() } });
    await storage.remove(storageKey);
  }

  async function assertIdle(database: TenantDatabase): Promise<void> {
    const busy = await db.migrationRunTarget.count({
      where: {
        tenantDatabaseId: database.id,
        dryRun: false,
        status: { in: ['PENDING', 'QUEUED', 'RUNNING'] },
      },
    });
    if (busy > 0) {
      throw new PreconditionFailedError('A run is working on this tenant; wait for it or cancel it first');
    }
  }

  async function toolsFor(client: Pick<pg.ClientBase, 'query'>): Promise<PgTools> {
    const result = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
    const versionNum = Number(result.rows[0]!.v);
    const major = Math.floor(versionNum / 10000);
    let tools = toolsByMajor.get(major);
    if (!tools) {
      tools = resolvePgTools(versionNum, { binDir: config.pgClientBinDir });
      // A failed lookup is not cached: installing the client fixes it without a restart.
      tools.catch(() => toolsByMajor.delete(major));
      toolsByMajor.set(major, tools);
    }
    return tools;
  }

  return {
    backupDatabase,
    backupIfPresent,
    backupTenant,
    listBackups,
    verifyBackup,
    restoreBackup,
    pruneBackups,
    purgeTenantBackups,
  };
}
export type BackupService = ReturnType<typeof createBackupService>;

/** A fresh name of at most 63 characters beside `name`, for the new or the old copy during a swap. */
function asideName(name: string): string {
  return `${name.slice(0, 50)}_r${randomBytes(4).toString('hex')}`;
}

function psqlArgs(url: string, files: readonly string[]): string[] {
  return [
    '--no-psqlrc',
    '--quiet',
    '--no-password',
    '--single-transaction',
    '--set=ON_ERROR_STOP=1',
    `--dbname=${url}`,
    ...files.flatMap((file) => ['--file', file]),
  ];
}

// Fails the restore transaction unless the restored schema has a ledger whose highest version is
// the backup's (versions are digit strings: compared by length without leading zeros, then text).
function ledgerCheckSql(ledger: LedgerLocation, version: string | null): string {
  const table = pg.escapeLiteral(`${quoteSchema(ledger.schema)}.${ledgerTableOf(ledger)}`);
  const expected = version === null ? 'NULL' : pg.escapeLiteral(version);
  return `DO $check$
DECLARE reached text;
BEGIN
  IF to_regclass(${table}) IS NULL THEN
    RAISE EXCEPTION 'the restored schema has no ledger';
  END IF;
  EXECUTE format('SELECT version FROM %s ORDER BY length(ltrim(version, ''0'')) DESC, ltrim(version, ''0'') DESC LIMIT 1', ${table}::regclass)
    INTO reached;
  IF reached IS DISTINCT FROM ${expected} THEN
    RAISE EXCEPTION 'the restored ledger is at version %, the backup recorded %', reached, ${expected}::text;
  END IF;
END
$check$;`;
}

async function withScratchDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tenant-restore-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
