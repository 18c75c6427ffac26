import { LEDGER_TABLE } from '../../../src/migrations/ledger.js';
/**
 * Backups and restores of single tenants (issue 15) with the real pg_dump, pg_restore and psql:
 * a restore brings back exactly the backed-up rows, structure, ledger and version; a file changed
 * on disk is refused with nothing changed; a tenant deleted with dropData comes back.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalBackupStorage } from '../../../src/backups/backup-storage.js';
import { createBackupService, type BackupService } from '../../../src/backups/backup-service.js';
import { withDatabase } from '../../../src/config.js';
import { quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { createControlPlanePool, type ControlPlanePool } from '../../../src/db/control-plane.js';
import { NotFoundError, PreconditionFailedError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logger.js';
import { readDeploymentId } from '../../../src/tenants/deployment.js';
import { ownershipMarker } from '../../../src/tenants/ownership.js';
import { provisionTenant } from '../../../src/tenants/provisioner.js';
import { createTenantService, type TenantService } from '../../../src/tenants/tenant-service.js';
import { useRunHarness } from '../runs/run-harness.js';

/** What `promise` rejected with; fails when it resolves. */
function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected an error');
    },
    (error: unknown) => error,
  );
}

describe('tenant backups', () => {
  const h = useRunHarness('fleet');
  let dir: string;
  let backups: BackupService;
  let tenants: TenantService;
  let controlPlanePool: ControlPlanePool;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'backups-test-'));
    backups = createBackupService({
      db: h.db,
      storage: createLocalBackupStorage(dir),
      secretBox: h.secretBox,
      tenantPools: h.tenantPools,
      deploymentId: () => readDeploymentId(h.db),
      config: { ...h.config, backupRetentionDays: 30, backupKeepLast: 1 },
      logger: createLogger('silent'),
    });
    controlPlanePool = createControlPlanePool(h.config.databaseUrl, {
      maxConnections: 2,
      applicationName: 'test-backups',
    });
    tenants = createTenantService({
      db: h.db,
      controlPlanePool,
      config: h.config,
      queue: h.queue,
      servers: h.servers,
      secretBox: h.secretBox,
      tenantPools: h.tenantPools,
      readPools: h.tenantPools,
      catalog: h.catalog,
      logger: createLogger('silent'),
    });
  });

  afterAll(async () => {
    await controlPlanePool?.end();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // A provisioned tenant at the catalog's latest version, with rows.
  async function provisionedTenant(prefix: string) {
    const [tenantId] = await h.createTenants(prefix, 1);
    const database = await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId: tenantId! } });
    await provisionTenant({
      location: database,
      connectionString: h.database.url,
      pool: h.database.pool,
      catalog: h.catalog,
      deploymentId: await readDeploymentId(h.db),
    });
    await h.db.tenantDatabase.update({ where: { id: database.id }, data: { schemaVersion: '0003' } });
    const schema = database.schemaName!;
    await h.database.pool.query(
      `INSERT INTO ${schema}.items (name, price) SELECT 'item ' || i, i FROM generate_series(1, 200) i`,
    );
    const tenant = await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenantId! } });
    return { tenant, database, schema };
  }

  // Rows of every table (ledger included) and the columns and indexes of the schema, hashed.
  async function snapshot(schema: string) {
    const q = async (sql: string) => (await h.database.pool.query(sql)).rows;
    return {
      items: await q(
        `SELECT md5(string_agg(i::text, ',' ORDER BY id)) AS h, count(*)::int AS n FROM ${schema}.items i`,
      ),
      ledger: await q(`SELECT version, name, checksum FROM ${schema}.${LEDGER_TABLE} ORDER BY version`),
      log: await q(`SELECT version FROM ${schema}.migration_log ORDER BY version`),
      columns: await q(
        `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
         WHERE table_schema = '${schema}' ORDER BY table_name, column_name`,
      ),
      indexes: await q(
        `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = '${schema}' ORDER BY indexname`,
      ),
    };
  }

  async function markerOf(schema: string): Promise<string | null> {
    const { rows } = await h.database.pool.query<{ m: string | null }>(
      `SELECT obj_description(oid, 'pg_namespace') AS m FROM pg_namespace WHERE nspname = $1`,
      [schema],
    );
    return rows[0]?.m ?? null;
  }

  it('records size and SHA-256 of a custom-format dump and restores exactly its rows, structure, ledger and version', async () => {
    const { tenant, database, schema } = await provisionedTenant('bk_restore');
    const before = await snapshot(schema);
    const [backup] = await backups.backupTenant(tenant.tenantId, { reason: 'manual' });
    expect(backup).toMatchObject({ tenantId: tenant.tenantId, schemaVersion: '0003', reason: 'manual' });
    const file = await readFile(path.join(dir, backup!.storageKey));
    expect(file.subarray(0, 5).toString()).toBe('PGDMP');
    expect(Number(backup!.sizeBytes)).toBe(file.length);
    expect(backup!.sha256).toMatch(/^[0-9a-f]{64}$/);

    // Rows changed by hand, the structure and ledger moved back a step.
    await h.database.pool.query(`UPDATE ${schema}.items SET price = price * 2 WHERE id % 3 = 0`);
    await h.database.pool.query(`DELETE FROM ${schema}.items WHERE id > 150`);
    await h.database.pool.query(`DROP INDEX ${schema}.items_name_key`);
    await h.database.pool.query(`DELETE FROM ${schema}.${LEDGER_TABLE} WHERE version = '0003'`);
    await h.db.tenantDatabase.update({ where: { id: database.id }, data: { schemaVersion: '0002' } });
    expect(await snapshot(schema)).not.toEqual(before);

    await backups.restoreBackup(backup!.id, { checkIdle: true });
    expect(await snapshot(schema)).toEqual(before);
    expect(await markerOf(schema)).toBe(ownershipMarker(await readDeploymentId(h.db)));
    expect(await h.db.tenantDatabase.findUniqueOrThrow({ where: { id: database.id } })).toMatchObject({
      schemaVersion: '0003',
      status: 'ACTIVE',
    });
    // No schema left beside the tenant's.
    const { rows } = await h.database.pool.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [
      `${schema}%`,
    ]);
    expect(rows).toEqual([{ nspname: schema }]);
  });

  it('refuses a backup file changed on disk and changes nothing', async () => {
    const { tenant, database, schema } = await provisionedTenant('bk_tampered');
    const [backup] = await backups.backupTenant(tenant.tenantId, { reason: 'manual' });
    await h.database.pool.query(`DELETE FROM ${schema}.items WHERE id > 100`);
    const changed = await snapshot(schema);
    const filePath = path.join(dir, backup!.storageKey);
    const bytes = await readFile(filePath);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await writeFile(filePath, bytes);

    const error = await rejection(backups.restoreBackup(backup!.id));
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect((error as Error).message).toMatch(/changed since it was written/);
    expect(await snapshot(schema)).toEqual(changed);
    expect(await h.db.tenantDatabase.findUniqueOrThrow({ where: { id: database.id } })).toMatchObject({
      schemaVersion: '0003',
    });
  });

  it("rolls a restore back whole when the restored ledger is not at the backup's version", async () => {
    const { tenant, schema } = await provisionedTenant('bk_half');
    const [backup] = await backups.backupTenant(tenant.tenantId, { reason: 'manual' });
    // Changes the restore must not keep or half-keep.
    await h.database.pool.query(`DROP INDEX ${schema}.items_name_key`);
    await h.database.pool.query(`INSERT INTO ${schema}.items (name, price) VALUES ('after', 1)`);
    const changed = await snapshot(schema);
    // The recorded version disagrees with the dump's ledger: the check inside the transaction fails.
    await h.db.tenantBackup.update({ where: { id: backup!.id }, data: { schemaVersion: '0002' } });

    const error = await rejection(backups.restoreBackup(backup!.id));
    expect((error as Error).message).toMatch(/restored ledger is at version 0003/);
    expect(await snapshot(schema)).toEqual(changed);
    const { rows } = await h.database.pool.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [
      `${schema}%`,
    ]);
    expect(rows).toEqual([{ nspname: schema }]);
  });

  it('brings back a tenant deleted with dropData from its last backup', async () => {
    const { tenant, database, schema } = await provisionedTenant('bk_deleted');
    const before = await snapshot(schema);
    const [backup] = await backups.backupTenant(tenant.tenantId, { reason: 'before delete' });
    await tenants.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true });
    expect(await markerOf(schema)).toBeNull();
    await expect(backups.backupTenant(tenant.tenantId, { reason: 'x' })).rejects.toBeInstanceOf(
      NotFoundError,
    );

    await backups.restoreBackup(backup!.id, { checkIdle: true });
    expect(await snapshot(schema)).toEqual(before);
    expect(await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenant.tenantId } })).toMatchObject({
      deletedAt: null,
      status: 'ACTIVE',
    });
    expect(await h.db.tenantDatabase.findUniqueOrThrow({ where: { id: database.id } })).toMatchObject({
      schemaVersion: '0003',
      status: 'ACTIVE',
    });
  });

  it('restores a DATABASE-isolated tenant into a new database and swaps it in', async () => {
    const name = `${h.database.name.replace(/-/g, '_')}_bkdb`;
    const url = withDatabase(h.database.url, name);
    const databaseId = randomUUID();
    const tenant = await h.db.tenant.create({
      data: {
        name: `bk_db_${randomUUID().slice(0, 8)}`,
        status: 'ACTIVE',
        databases: {
          create: {
            id: databaseId,
            connectionStringEncrypted: h.secretBox.sealConnectionString(databaseId, url),
            databaseName: name,
            host: '127.0.0.1',
            status: 'ACTIVE',
            isolation: 'DATABASE',
          },
        },
      },
    });
    const database = await h.db.tenantDatabase.findUniqueOrThrow({ where: { id: databaseId } });
    try {
      await provisionTenant({
        location: database,
        connectionString: url,
        pool: h.tenantPools.poolFor(url),
        catalog: h.catalog,
        deploymentId: await readDeploymentId(h.db),
      });
      const pool = h.tenantPools.poolFor(url);
      await pool.query(
        `INSERT INTO items (name, price) SELECT 'item ' || i, i FROM generate_series(1, 50) i`,
      );
      const rows = async () =>
        (
          await h.tenantPools
            .poolFor(url)
            .query(`SELECT md5(string_agg(i::text, ',' ORDER BY id)) AS h FROM items i`)
        ).rows;
      const before = await rows();
      const [backup] = await backups.backupTenant(tenant.tenantId, { reason: 'manual' });
      await pool.query(`DELETE FROM items WHERE id > 10`);

      await backups.restoreBackup(backup!.id);
      expect(await rows()).toEqual(before);
      const { rows: markers } = await h.database.pool.query(
        `SELECT datname, shobj_description(oid, 'pg_database') AS marker FROM pg_database WHERE datname LIKE $1`,
        [`${name}%`],
      );
      expect(markers).toEqual([{ datname: name, marker: ownershipMarker(await readDeploymentId(h.db)) }]);
    } finally {
      await withConnection(withDatabase(h.database.url, 'postgres'), (client) =>
        client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(name)} WITH (FORCE)`),
      );
    }
  });

  it('refuses deleteTenant(dropData) with nothing changed when the backup before it fails', async () => {
    const { tenant, schema } = await provisionedTenant('bk_nodelete');
    const failing = createBackupService({
      db: h.db,
      // Under a character device: the backup cannot be written.
      storage: createLocalBackupStorage('/dev/null/backups'),
      secretBox: h.secretBox,
      tenantPools: h.tenantPools,
      deploymentId: () => readDeploymentId(h.db),
      config: h.config,
      logger: createLogger('silent'),
    });
    const guarded = createTenantService({
      db: h.db,
      controlPlanePool,
      config: h.config,
      queue: h.queue,
      servers: h.servers,
      secretBox: h.secretBox,
      tenantPools: h.tenantPools,
      readPools: h.tenantPools,
      catalog: h.catalog,
      logger: createLogger('silent'),
      backupBeforeDrop: async (database) => {
        await failing.backupIfPresent(database, { reason: 'before delete' });
      },
    });
    const before = await snapshot(schema);
    const error = await rejection(
      guarded.deleteTenant({ id: tenant.tenantId, confirmName: tenant.name, dropData: true }),
    );
    expect((error as Error).message).toMatch(/ENOTDIR/);
    expect(await snapshot(schema)).toEqual(before);
    expect(await h.db.tenant.findUniqueOrThrow({ where: { tenantId: tenant.tenantId } })).toMatchObject({
      deletedAt: null,
      status: 'ACTIVE',
    });
  });

  it('removes expired files past the keep-last count, but never the last backup of a deleted tenant', async () => {
    const live = await provisionedTenant('bk_prune_live');
    const gone = await provisionedTenant('bk_prune_gone');
    const liveBackups = [
      ...(await backups.backupTenant(live.tenant.tenantId, { reason: 'one' })),
      ...(await backups.backupTenant(live.tenant.tenantId, { reason: 'two' })),
    ];
    const [goneBackup] = await backups.backupTenant(gone.tenant.tenantId, { reason: 'before delete' });
    await tenants.deleteTenant({ id: gone.tenant.tenantId, confirmName: gone.tenant.name, dropData: true });
    const old = new Date(Date.now() - 40 * 86_400_000);
    await h.db.tenantBackup.updateMany({
      where: { id: { in: [...liveBackups.map((b) => b.id), goneBackup!.id] } },
      data: { createdAt: old },
    });
    // The second is the newer: keep-last 1 keeps it.
    await h.db.tenantBackup.update({
      where: { id: liveBackups[1]!.id },
      data: { createdAt: new Date(old.getTime() + 1000) },
    });

    await backups.pruneBackups();
    const listed = await backups.listBackups(live.tenant.tenantId);
    expect(listed.map((b) => b.id)).toEqual([liveBackups[1]!.id]);
    await expect(readFile(path.join(dir, liveBackups[0]!.storageKey))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect((await backups.listBackups(gone.tenant.tenantId)).map((b) => b.id)).toEqual([goneBackup!.id]);

    expect(await backups.purgeTenantBackups(gone.tenant.tenantId)).toBe(1);
    expect(await backups.listBackups(gone.tenant.tenantId)).toEqual([]);
    await expect(readFile(path.join(dir, goneBackup!.storageKey))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
