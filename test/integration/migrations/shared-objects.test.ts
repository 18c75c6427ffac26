import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  EXTENSIONS_SCHEMA,
  MigrationFailedError,
  TransactionMode,
  loadCatalog,
  migrateDown,
  migrateUp,
} from '../../../src/migrations/index.js';
import type { MigrationTarget } from '../../../src/migrations/index.js';
import { withConnection } from '../../../src/db/pg.js';
import { prepareDatabaseSql } from '../../../src/migrations/extensions.js';
import { provisionTenant } from '../../../src/tenants/provisioner.js';
import { useTestDatabase } from '../../helpers/database.js';
import { fixtureDir, ledgerVersions, tablesIn } from './fixtures.js';

describe('what a tenant file can reach', () => {
  const db = useTestDatabase();

  it('a down file on a drifted tenant cannot drop a table of the shared public schema', async () => {
    const catalog = await loadCatalog(fixtureDir('shared_objects'));
    const target = await db.createTenantSchema('drifted');
    await migrateUp(db.pool, target, catalog);
    // Drift: the tenant's table is gone, and the tenants database has a shared one of the same name.
    await db.pool.query(`DROP TABLE ${target.schema}.audit_events`);
    await db.pool.query('CREATE TABLE public.audit_events (id integer)');

    const error = await migrateDown(db.pool, target, catalog, { toVersion: '0' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationFailedError);
    expect(error).toMatchObject({ sqlState: '42P01', file: '0001_create_audit_events.down.sql' });
    expect(await tablesIn(db.pool, 'public')).toEqual(['audit_events']);
    expect(await ledgerVersions(db.pool, target.schema)).toEqual(['0001']);
  });

  it('CREATE EXTENSION in a tenant file lands in the extensions schema, so every later tenant can use it', async () => {
    const catalog = await loadCatalog(fixtureDir('extensions'));
    const tenants: MigrationTarget[] = [];
    // The first through the one-trip path (what a new tenant or a fleet target takes), then the rest.
    const first = db.tenantTarget('ext_one');
    await migrateUp(db.pool, first, catalog, { toVersion: '0002', expectedVersion: null });
    await migrateUp(db.pool, first, catalog);
    tenants.push(first);
    // The careful path, file by file.
    const second = db.tenantTarget('ext_two');
    await migrateUp(db.pool, second, catalog);
    tenants.push(second);
    // One transaction per file.
    const third = db.tenantTarget('ext_three');
    await migrateUp(db.pool, third, catalog, { mode: TransactionMode.PER_MIGRATION });
    tenants.push(third);

    const { rows: extensions } = await db.pool.query<{ extname: string; schema: string }>(
      `SELECT extname, extnamespace::regnamespace::text AS schema FROM pg_extension
        WHERE extname IN ('pgcrypto', 'citext') ORDER BY extname`,
    );
    expect(extensions).toEqual([
      { extname: 'citext', schema: EXTENSIONS_SCHEMA },
      { extname: 'pgcrypto', schema: EXTENSIONS_SCHEMA },
    ]);
    for (const tenant of tenants) {
      expect(await ledgerVersions(db.pool, tenant.schema)).toEqual(['0001', '0002', '0003', '0004']);
      const { rows } = await db.pool.query<{ n: number }>(
        `SELECT octet_length(secret) AS n FROM ${tenant.schema}.api_keys WHERE id = 1`,
      );
      expect(rows).toEqual([{ n: 16 }]);
      // The tenant schema holds the tenant's tables only: no extension functions or types.
      const { rows: foreign } = await db.pool.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = $1::regnamespace)::int
              + (SELECT count(*) FROM pg_type WHERE typnamespace = $1::regnamespace AND typrelid = 0 AND typelem = 0)::int AS n`,
        [tenant.schema],
      );
      expect(foreign).toEqual([{ n: 0 }]);
    }
    // Nobody but the service can create objects in the extensions schema; everybody may use it.
    const { rows: privileges } = await db.pool.query<{ usage: boolean; create: boolean }>(
      `SELECT bool_or(privilege_type = 'USAGE') AS usage, bool_or(privilege_type = 'CREATE') AS create
         FROM pg_namespace, aclexplode(nspacl) WHERE nspname = $1 AND grantee = 0`,
      [EXTENSIONS_SCHEMA],
    );
    expect(privileges).toEqual([{ usage: true, create: false }]);
  });

  it('provisioning revokes CREATE on public from every role in the tenants database', async () => {
    // What a database created before PostgreSQL 15 (or restored from one) allows.
    await db.pool.query('GRANT CREATE ON SCHEMA public TO PUBLIC');
    const catalog = await loadCatalog(fixtureDir('basic'));
    await provisionTenant({
      location: { isolation: 'SCHEMA', databaseName: db.name, schemaName: 'tenant_hardened' },
      connectionString: db.url,
      pool: db.pool,
      catalog,
      deploymentId: randomUUID(),
    });
    const { rows } = await db.pool.query<{ create: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                       WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE') AS create`,
    );
    expect(rows).toEqual([{ create: false }]);
    expect(await ledgerVersions(db.pool, 'tenant_hardened')).toEqual(['0001', '0002', '0010']);
  });
});

describe('the first provisionings of a tenants database', () => {
  const fresh = useTestDatabase();

  it('prepare the database at once, whichever creates the extensions schema', async () => {
    // Found by the fault suite: the first provisionings of a database raced on CREATE SCHEMA
    // (42P06) while the first of them still held the extensions lock in its transaction.
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        withConnection(fresh.url, (client) =>
          client.query(
            `BEGIN; ${prepareDatabaseSql({ lock: false, revokePublicCreate: true })}; SELECT pg_sleep(0.2); COMMIT`,
          ),
        ),
      ),
    );
    expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    const schema = await fresh.pool.query('SELECT to_regnamespace($1) IS NOT NULL AS present', [EXTENSIONS_SCHEMA]);
    expect(schema.rows[0]).toEqual({ present: true });
  });
});
