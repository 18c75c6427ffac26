/**
 * B6 (issue 15): what a tenant backup costs through the service (lock, ledger read, pg_dump into
 * the storage with fsync and rename, SHA-256, control-plane row) against a bare `pg_dump -Fc` of the
 * same schema to a file. B1's fixture catalog, with rows in its tables. The two are interleaved
 * per tenant and their order alternates every round, so drift on a shared machine hits both; the
 * ratio is taken per pair and reported as median with its spread (p5-p95, min-max).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createLocalBackupStorage } from '../../src/backups/backup-storage.js';
import { createBackupService } from '../../src/backups/backup-service.js';
import { runPgTool, toolConnectionOf } from '../../src/backups/pg-commands.js';
import { resolvePgTools } from '../../src/backups/pg-tools.js';
import { loadConfig } from '../../src/config.js';
import { createSecretBoxFromConfig } from '../../src/crypto/secret-box.js';
import { createControlPlaneDb } from '../../src/db/control-plane.js';
import { createTenantPools } from '../../src/db/tenant-pools.js';
import { createLogger } from '../../src/logger.js';
import { LEDGER_TABLE, loadCatalog, migrateControlPlane, migrateUp } from '../../src/migrations/index.js';
import { ledgerTargetOf } from '../../src/tenants/ledger-target.js';
import { createDeploymentIdReader } from '../../src/tenants/deployment.js';
import { seedSchemaTenants } from './seed.js';
import { databaseUrl, dropDatabases, recreateDatabases } from './stack.js';
import { percentile, summarize, type Summary } from './stats.js';

/** Rows seeded per tenant: accounts, projects (2 per account), tasks (5 per project). */
const ACCOUNTS = 500;

export interface BackupCostResult {
  readonly tenants: number;
  readonly rounds: number;
  readonly bytesPerTenant: number;
  readonly ours: Summary;
  readonly bare: Summary;
  /** Per pair: ours / bare. */
  readonly ratio: Summary;
  /** The 5th percentile of the per-pair ratios (the spread's lower end). */
  readonly ratioP5: number;
}

/** Runs B6 over `tenants` seeded tenants, `rounds` times each. */
export async function benchBackupCost(
  catalogDir: string,
  tenants: number,
  rounds: number,
): Promise<BackupCostResult> {
  const database = 'cp_bench_b6';
  await recreateDatabases(database);
  const url = databaseUrl(database);
  const dir = await mkdtemp(join(tmpdir(), 'bench-b6-'));
  const config = loadConfig({
    DATABASE_URL: url,
    TENANT_DATABASE_URL: url,
    BACKUP_DIR: dir,
    LOG_LEVEL: 'warn',
  });
  await migrateControlPlane(url, config.controlPlaneMigrationsDir);
  const db = createControlPlaneDb(url, { maxConnections: 2 });
  const pools = createTenantPools({ maxPerServer: 4 });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const catalog = await loadCatalog(catalogDir);
    const { names, schemas } = await seedSchemaTenants(config, 'b6', tenants);
    for (const schema of schemas) {
      const location = { databaseName: database, schemaName: schema };
      await migrateUp(pools.poolFor(url), ledgerTargetOf(location, LEDGER_TABLE), catalog, {
        toVersion: catalog.latest,
      });
      await client.query(
        `SET search_path TO ${pg.escapeIdentifier(schema)};
         INSERT INTO accounts (email, full_name) SELECT 'a' || g || '@example.com', 'Account ' || g FROM generate_series(1, ${ACCOUNTS}) g;
         INSERT INTO projects (account_id, name) SELECT 1 + (g % ${ACCOUNTS}), 'project ' || g FROM generate_series(1, ${ACCOUNTS * 2}) g;
         INSERT INTO tasks (project_id, assignee_id, summary) SELECT 1 + (g % ${ACCOUNTS * 2}), 1 + (g % ${ACCOUNTS}), 'task ' || g FROM generate_series(1, ${ACCOUNTS * 10}) g;
         RESET search_path`,
      );
    }
    await client.query('VACUUM ANALYZE');
    const backups = createBackupService({
      db,
      storage: createLocalBackupStorage(dir),
      secretBox: createSecretBoxFromConfig(config),
      tenantPools: pools,
      deploymentId: createDeploymentIdReader(db),
      config,
      logger: createLogger('warn'),
    });
    const version = Number((await client.query('SHOW server_version_num')).rows[0].server_version_num);
    const tools = await resolvePgTools(version);
    const connection = toolConnectionOf(url);
    const databases = await db.tenantDatabase.findMany({ where: { tenant: { name: { in: names } } } });
    const ours: number[] = [];
    const bare: number[] = [];
    const ratios: number[] = [];
    let bytes = 0;
    const timeOurs = async (index: number) => {
      const begin = performance.now();
      const backup = await backups.backupDatabase(databases[index]!, { reason: 'bench' });
      const ms = performance.now() - begin;
      bytes = Number(backup.sizeBytes);
      return ms;
    };
    const timeBare = async (index: number, round: number) => {
      const file = join(dir, `bare-${index}-${round}.dump`);
      const begin = performance.now();
      await runPgTool(
        tools.pgDump,
        [
          '--format=custom',
          `--schema=${databases[index]!.schemaName!}`,
          `--file=${file}`,
          `--dbname=${connection.url}`,
        ],
        connection,
      );
      const ms = performance.now() - begin;
      await rm(file, { force: true });
      return ms;
    };
    // One warm-up pair, not counted.
    await timeOurs(0);
    await timeBare(0, -1);
    for (let round = 0; round < rounds; round += 1) {
      for (let index = 0; index < databases.length; index += 1) {
        const oursFirst = (round + index) % 2 === 0;
        const a = oursFirst ? await timeOurs(index) : await timeBare(index, round);
        const b = oursFirst ? await timeBare(index, round) : await timeOurs(index);
        const [o, p] = oursFirst ? [a, b] : [b, a];
        ours.push(o);
        bare.push(p);
        ratios.push(o / p);
      }
    }
    return {
      tenants,
      rounds,
      bytesPerTenant: bytes,
      ours: summarize(ours),
      bare: summarize(bare),
      ratio: summarize(ratios),
      ratioP5: percentile(
        [...ratios].sort((x, y) => x - y),
        5,
      ),
    };
  } finally {
    await client.end();
    await pools.close();
    await db.$disconnect();
    await rm(dir, { recursive: true, force: true });
    await dropDatabases(database);
  }
}
