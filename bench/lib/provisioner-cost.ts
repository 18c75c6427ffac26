/**
 * B2's template path at the provisioner (issue 16): what provisioning costs on the tenant server
 * alone, without the API, the queue and the run's bookkeeping, which cost the same whatever the
 * path (measured end to end beside it). In this process, on fresh databases, rotated per tenant:
 * a SCHEMA tenant from a spare schema, from the template applied, and replayed by the provisioner,
 * against CREATE SCHEMA + the catalog in one transaction on one connection; then a DATABASE tenant
 * copied from the template database, against CREATE DATABASE + the catalog in one transaction.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { createExpectedFingerprintStore } from '../../src/fingerprints/expected-fingerprint-store.js';
import { createLogger } from '../../src/logger.js';
import { loadCatalog, migrateControlPlane } from '../../src/migrations/index.js';
import { createProvisionTemplates } from '../../src/templates/provision-templates.js';
import { createSchemaTemplateStore } from '../../src/templates/template-store.js';
import { provisionTenant } from '../../src/tenants/provisioner.js';
import { databaseUrl, dropDatabases, recreateDatabases } from './stack.js';

/** Milliseconds per tenant of each path. */
export interface ProvisionerCost {
  readonly schema: { spare: number[]; template: number[]; replay: number[]; raw: number[] };
  readonly database: { copy: number[]; raw: number[] };
}

/** Measures `tenants` SCHEMA tenants and `databases` DATABASE tenants of each path. */
export async function benchProvisionerCost(
  catalogDir: string,
  upSql: readonly string[],
  { tenants, databases }: { readonly tenants: number; readonly databases: number },
): Promise<ProvisionerCost> {
  const controlPlane = 'cp_bench_b2p';
  const tenantDb = 'cp_bench_b2p_tenants';
  await recreateDatabases(controlPlane, tenantDb);
  const config = loadConfig({ DATABASE_URL: databaseUrl(controlPlane) });
  await migrateControlPlane(config.databaseUrl, config.controlPlaneMigrationsDir);
  const catalog = await loadCatalog(catalogDir);
  const cp = new pg.Pool({ connectionString: config.databaseUrl, max: 2 });
  const url = databaseUrl(tenantDb);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const raw = new pg.Client({ connectionString: url });
  await raw.connect();
  const deploymentId = randomUUID();
  const logger = createLogger('warn');
  const templatesWith = (spares: string) =>
    createProvisionTemplates({
      store: createSchemaTemplateStore(cp),
      expectedStore: createExpectedFingerprintStore(cp),
      config: loadConfig({ PROVISION_SPARE_SCHEMAS: spares }),
      logger,
    });
  const withSpares = templatesWith('2');
  const withoutSpares = templatesWith('0');
  const schema = {
    spare: [] as number[],
    template: [] as number[],
    replay: [] as number[],
    raw: [] as number[],
  };
  const database = { copy: [] as number[], raw: [] as number[] };
  const made: string[] = [];
  const time = async (into: number[], fn: () => Promise<unknown>) => {
    const begin = performance.now();
    await fn();
    into.push(performance.now() - begin);
  };
  const provision = (name: string, templates?: typeof withSpares) =>
    provisionTenant({
      location: { isolation: 'SCHEMA', databaseName: tenantDb, schemaName: name },
      connectionString: url,
      pool,
      catalog,
      deploymentId,
      ...(templates ? { templates } : {}),
    });
  try {
    // The first tenants build the template and the spares.
    await provision('tenant_warm_spare', withSpares);
    await provision('tenant_warm_template', withoutSpares);
    await withSpares.sparesSettled();
    for (let i = 0; i < tenants; i++) {
      const steps = [
        () => time(schema.spare, () => provision(`tenant_s${i}`, withSpares)),
        () => time(schema.template, () => provision(`tenant_t${i}`, withoutSpares)),
        () => time(schema.replay, () => provision(`tenant_r${i}`)),
        () =>
          time(schema.raw, () =>
            raw.query(
              `BEGIN; CREATE SCHEMA raw${i}; SET LOCAL search_path TO raw${i}; ${upSql.join('\n;\n')}; COMMIT`,
            ),
          ),
      ];
      for (let k = 0; k < steps.length; k++) {
        await (steps[(i + k) % steps.length] as () => Promise<void>)();
        // The spare taken is replaced in the background: not while another path is timed.
        await withSpares.sparesSettled();
      }
    }
    const copyDatabase = async (name: string) => {
      made.push(name);
      const tenantPool = new pg.Pool({ connectionString: databaseUrl(name), max: 2 });
      try {
        await provisionTenant({
          location: { isolation: 'DATABASE', databaseName: name, schemaName: null },
          connectionString: databaseUrl(name),
          pool: tenantPool,
          catalog,
          deploymentId,
          templates: withoutSpares,
        });
      } finally {
        await tenantPool.end();
      }
    };
    const rawDatabase = async (name: string) => {
      made.push(name);
      await raw.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      const client = new pg.Client({ connectionString: databaseUrl(name) });
      await client.connect();
      await client.query(`BEGIN; ${upSql.join('\n;\n')}; COMMIT`).finally(() => client.end());
    };
    await copyDatabase('cp_bench_b2p_warm');
    for (let i = 0; i < databases; i++) {
      const steps = [
        () => time(database.copy, () => copyDatabase(`cp_bench_b2p_c${i}`)),
        () => time(database.raw, () => rawDatabase(`cp_bench_b2p_r${i}`)),
      ];
      for (const step of i % 2 === 0 ? steps : steps.reverse()) await step();
    }
  } finally {
    await raw.end();
    await pool.end();
    await cp.end();
    const template = await templateDatabasesOf(deploymentId);
    await dropDatabases(...made, controlPlane, tenantDb, ...template);
  }
  return { schema, database };
}

// The template databases this deployment made, no longer templates, so they can be dropped.
async function templateDatabasesOf(deploymentId: string): Promise<string[]> {
  const admin = new pg.Client({ connectionString: databaseUrl('postgres') });
  await admin.connect();
  try {
    const prefix = `cp_template_${deploymentId.replace(/-/g, '').slice(0, 8)}_`;
    const { rows } = await admin.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1)',
      [prefix],
    );
    for (const { datname } of rows) {
      await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(datname)} WITH IS_TEMPLATE false`);
    }
    return rows.map((row) => row.datname);
  } finally {
    await admin.end();
  }
}
