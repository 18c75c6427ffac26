import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { migrateControlPlane } from '../../../src/migrations/index.js';
import { useTestDatabase } from '../../helpers/database.js';
import { CONTROL_PLANE_DIR } from '../../helpers/template.js';

// Seed 002, the operators' guide: what `control_plane` must hold after migrating.
const SEED_002_TABLES: Record<string, [column: string, type: string, nullable: boolean][]> = {
  tenants: [
    ['tenant_id', 'uuid', false],
    ['name', 'character varying(255)', false],
    ['environment', 'tenant_environment', false],
    ['status', 'tenant_status', false],
    ['created_at', 'timestamp with time zone', false],
    ['updated_at', 'timestamp with time zone', false],
  ],
  tenant_databases: [
    ['id', 'uuid', false],
    ['tenant_id', 'uuid', false],
    ['connection_string_encrypted', 'text', false],
    ['database_name', 'character varying(63)', false],
    ['host', 'character varying(255)', false],
    ['port', 'integer', false],
    ['status', 'database_status', false],
    ['created_at', 'timestamp with time zone', false],
    ['updated_at', 'timestamp with time zone', false],
  ],
  system_config: [
    ['key', 'character varying(255)', false],
    ['value', 'jsonb', false],
    ['updated_at', 'timestamp with time zone', false],
  ],
};

describe('migrateControlPlane on an empty database', () => {
  const db = useTestDatabase();

  beforeAll(async () => {
    await migrateControlPlane(db.url, CONTROL_PLANE_DIR);
  });

  it('creates the control_plane schema with the three enums and their labels in order', async () => {
    const result = await db.pool.query<{ typname: string; labels: string[] }>(
      `SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] AS labels
         FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'control_plane' AND t.typname = ANY($1) GROUP BY t.typname ORDER BY t.typname`,
      [['tenant_environment', 'tenant_status', 'database_status']],
    );
    expect(Object.fromEntries(result.rows.map((r) => [r.typname, r.labels]))).toEqual({
      database_status: ['active', 'inactive', 'migrating', 'error'],
      tenant_environment: ['development', 'staging', 'production'],
      tenant_status: ['active', 'inactive', 'suspended', 'pending'],
    });
  });

  it.each(Object.entries(SEED_002_TABLES))(
    'creates table %s with the listed columns and types',
    async (table, columns) => {
      const result = await db.pool.query<{ attname: string; type: string; notnull: boolean }>(
        `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull
         FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
        [`control_plane.${table}`],
      );
      const actual = new Map(
        result.rows.map((r) => [r.attname, [r.attname, r.type.replace(/^control_plane\./, ''), !r.notnull]]),
      );
      for (const column of columns) expect(actual.get(column[0])).toEqual(column);
    },
  );

  it('creates the three named indexes', async () => {
    const result = await db.pool.query<{ indexname: string; tablename: string }>(
      `SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'control_plane' AND indexname = ANY($1) ORDER BY indexname`,
      [['idx_tenants_status', 'idx_tenant_databases_tenant_id', 'idx_tenant_databases_status']],
    );
    expect(result.rows).toEqual([
      { indexname: 'idx_tenant_databases_status', tablename: 'tenant_databases' },
      { indexname: 'idx_tenant_databases_tenant_id', tablename: 'tenant_databases' },
      { indexname: 'idx_tenants_status', tablename: 'tenants' },
    ]);
  });

  it('seeds exactly one system_admin tenant, production and active', async () => {
    const result = await db.pool.query(
      `SELECT name, environment::text, status::text FROM control_plane.tenants`,
    );
    expect(result.rows).toEqual([{ name: 'system_admin', environment: 'production', status: 'active' }]);
  });

  it('fires the updated_at trigger on UPDATE for all three tables', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const tenant = await client.query<{ tenant_id: string }>(
        `INSERT INTO control_plane.tenants (name, updated_at) VALUES ('trigger_probe', now() - interval '1 day') RETURNING tenant_id`,
      );
      const tenantId = tenant.rows[0]!.tenant_id;
      await client.query(
        `INSERT INTO control_plane.tenant_databases (tenant_id, connection_string_encrypted, database_name, host, updated_at)
         VALUES ($1, 'v1.x', 'db', 'localhost', now() - interval '1 day')`,
        [tenantId],
      );
      await client.query(
        `INSERT INTO control_plane.system_config (key, value, updated_at) VALUES ('probe', '1', now() - interval '1 day')`,
      );
      await client.query(`UPDATE control_plane.tenants SET status = 'active' WHERE tenant_id = $1`, [
        tenantId,
      ]);
      await client.query(`UPDATE control_plane.tenant_databases SET status = 'active' WHERE tenant_id = $1`, [
        tenantId,
      ]);
      await client.query(`UPDATE control_plane.system_config SET value = '2' WHERE key = 'probe'`);
      const stale = await client.query(
        `SELECT 'tenants' FROM control_plane.tenants WHERE tenant_id = $1 AND updated_at < now()
         UNION ALL SELECT 'tenant_databases' FROM control_plane.tenant_databases WHERE tenant_id = $1 AND updated_at < now()
         UNION ALL SELECT 'system_config' FROM control_plane.system_config WHERE key = 'probe' AND updated_at < now()`,
        [tenantId],
      );
      expect(stale.rows).toEqual([]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('changes nothing when run again', async () => {
    const before = await db.pool.query(`SELECT * FROM control_plane.control_plane_ledger ORDER BY version`);
    const result = await migrateControlPlane(db.url, CONTROL_PLANE_DIR);
    expect(result.steps).toEqual([]);
    const after = await db.pool.query(`SELECT * FROM control_plane.control_plane_ledger ORDER BY version`);
    expect(after.rows).toEqual(before.rows);
    // Every file of the catalog, whatever number the newest one has.
    const versions = readdirSync(CONTROL_PLANE_DIR)
      .filter((name) => name.endsWith('.up.sql'))
      .map((name) => name.slice(0, 4))
      .sort();
    expect(versions.slice(0, 6)).toEqual(['0001', '0002', '0003', '0004', '0005', '0006']);
    expect(after.rows.map((r: { version: string }) => r.version)).toEqual(versions);
    const tenants = await db.pool.query(`SELECT count(*)::int AS n FROM control_plane.tenants`);
    expect(tenants.rows[0]).toEqual({ n: 1 });
  });
});
