/**
 * `backup --tenant <name>` and `restore --backup <id>` (issue 15): direct operations run in the
 * CLI process (the API's backupTenant and restoreTenantBackup are runs through the workers). Both
 * need the PostgreSQL client tools of the tenant server's version, and a restore refuses while a
 * run works on the tenant.
 */
import { createLocalBackupStorage } from '../backups/backup-storage.js';
import { createBackupService } from '../backups/backup-service.js';
import type { Config } from '../config.js';
import { createSecretBoxFromConfig } from '../crypto/secret-box.js';
import { createControlPlaneDb } from '../db/control-plane.js';
import { createTenantPools } from '../db/tenant-pools.js';
import { NotFoundError } from '../errors.js';
import { createLogger } from '../logger.js';
import { migrateControlPlane } from '../migrations/index.js';
import { createDeploymentIdReader } from '../tenants/deployment.js';
import { UsageError } from './usage-error.js';

/** The parsed command line the backup commands read. */
export interface BackupCommandInput {
  readonly action: string | undefined;
  readonly tenant?: string | undefined;
  readonly backup?: string | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `backup --tenant <name>`: dumps the tenant now and prints the backup's id, size and checksum. */
export async function backupCommand(
  config: Config,
  input: BackupCommandInput,
  io: { out: (line: string) => void },
): Promise<void> {
  if (input.action !== undefined) throw new UsageError(`unexpected argument "${input.action}"`);
  if (!input.tenant) throw new UsageError('backup needs --tenant <name>');
  const name = input.tenant;
  await withBackupService(config, async ({ backups, db }) => {
    const tenant = await db.tenant.findUnique({ where: { name } });
    if (!tenant || tenant.deletedAt) throw new NotFoundError(`No such tenant: ${name}`);
    for (const backup of await backups.backupTenant(tenant.tenantId, { reason: 'manual (cli)' })) {
      io.out(
        `backed up tenant ${name}: backup ${backup.id}, ${backup.sizeBytes} bytes, version ${backup.schemaVersion ?? 'none'}, sha256 ${backup.sha256}`,
      );
    }
  });
}

/** `restore --backup <id>`: restores the tenant of that backup (a deleted one comes back). */
export async function restoreCommand(
  config: Config,
  input: BackupCommandInput,
  io: { out: (line: string) => void },
): Promise<void> {
  if (input.action !== undefined) throw new UsageError(`unexpected argument "${input.action}"`);
  if (!input.backup) throw new UsageError('restore needs --backup <id>');
  const backupId = input.backup;
  if (!UUID.test(backupId)) throw new NotFoundError(`No such backup: ${backupId}`);
  await withBackupService(config, async ({ backups, db }) => {
    const backup = await backups.restoreBackup(backupId, { checkIdle: true });
    const tenant = await db.tenant.findUniqueOrThrow({ where: { tenantId: backup.tenantId } });
    io.out(
      `restored tenant ${tenant.name} from backup ${backup.id} (version ${backup.schemaVersion ?? 'none'})`,
    );
  });
}

async function withBackupService<T>(
  config: Config,
  fn: (services: {
    backups: ReturnType<typeof createBackupService>;
    db: ReturnType<typeof createControlPlaneDb>;
  }) => Promise<T>,
): Promise<T> {
  await migrateControlPlane(config.databaseUrl, config.controlPlaneMigrationsDir);
  const logger = createLogger(config.logLevel === 'debug' ? 'debug' : 'warn');
  const db = createControlPlaneDb(config.databaseUrl, { maxConnections: 2 });
  const tenantPools = createTenantPools({ maxPerServer: 2, logger });
  try {
    const backups = createBackupService({
      db,
      storage: createLocalBackupStorage(config.backupDir),
      secretBox: createSecretBoxFromConfig(config),
      tenantPools,
      deploymentId: createDeploymentIdReader(db),
      config,
      logger,
    });
    return await fn({ backups, db });
  } finally {
    await tenantPools.close();
    await db.$disconnect();
  }
}
