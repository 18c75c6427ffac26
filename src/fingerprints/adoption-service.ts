/**
 * `adoptTenants`: registers the existing schemas that match a pattern on the tenant server as
 * PENDING tenants and starts an ADOPT run over them; the worker decides each one's version
 * (adoption.ts) and stamps its ledger. A schema already registered is left out.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { Config } from '../config.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { MigrationRun, TenantDatabase, TenantEnvironment } from '../generated/prisma/client.js';
import { EXTENSIONS_SCHEMA, type MigrationCatalog } from '../migrations/index.js';
import { ledgerTargetOf } from '../migrations/ledger-target.js';
import { AdoptionRefusedError, HistorySource, adoptSchema, type AdoptionOptions } from './adoption.js';
import type { ExpectedFingerprints } from './expected-fingerprints.js';
import type { FingerprintService } from './fingerprint-service.js';

/** What adoptTenants takes (the API's AdoptTenantsInput). */
export interface AdoptTenantsRequest {
  /** Only the default server until the server registry exists. */
  readonly server?: string | null;
  /** SQL LIKE pattern over schema names, e.g. "legacy_%". */
  readonly schemaPattern: string;
  /** Stripped from the schema name to make the tenant name. */
  readonly namePrefix?: string | null;
  readonly environment?: TenantEnvironment | null;
  readonly historySource?: HistorySource | null;
  readonly versionMap?: unknown;
  readonly dryRun?: boolean | null;
}

export interface AdoptionServiceDeps {
  readonly db: ControlPlaneDb;
  readonly config: Pick<Config, 'tenantDatabaseUrl'>;
  readonly secretBox: Pick<SecretBox, 'sealConnectionString'>;
  /** The default tenant server's pool. */
  readonly serverPool: () => Pool;
  readonly startAdoptRun: (
    request: { tenantIds: readonly string[]; options: AdoptionOptions; dryRun: boolean },
    actor: { name: string },
  ) => Promise<MigrationRun>;
}

// Schemas that are never tenants: the system's own and ours.
const NOT_TENANTS = ['public', 'information_schema', 'control_plane', EXTENSIONS_SCHEMA];
const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Creates adoptTenants. */
export function createAdoptionService({
  db,
  config,
  secretBox,
  serverPool,
  startAdoptRun,
}: AdoptionServiceDeps) {
  async function adoptTenants(request: AdoptTenantsRequest, actor: { name: string }): Promise<MigrationRun> {
    if (request.server)
      throw new NotFoundError(`No such server: ${request.server} (only the default server is known)`);
    const pattern = request.schemaPattern.trim();
    if (pattern === '' || pattern === '%') {
      throw new ValidationError('schemaPattern must name some schemas, e.g. "legacy_%"', 'schemaPattern');
    }
    const options: AdoptionOptions = {
      source: request.historySource ?? HistorySource.AUTO,
      versionMap: versionMapOf(request.versionMap),
    };
    const { rows } = await serverPool().query<{ schema: string }>(
      `SELECT nspname AS schema FROM pg_namespace
        WHERE nspname LIKE $1 AND nspname <> ALL ($2::text[]) AND nspname NOT LIKE 'pg\\_%' ORDER BY nspname`,
      [pattern, NOT_TENANTS],
    );
    const url = new URL(config.tenantDatabaseUrl);
    const databaseName = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
    const registered = await db.tenantDatabase.findMany({
      where: { databaseName, schemaName: { in: rows.map((r) => r.schema) } },
      select: { schemaName: true },
    });
    const taken = new Set(registered.map((r) => r.schemaName));
    const schemas = rows.map((r) => r.schema).filter((schema) => !taken.has(schema));
    if (schemas.length === 0) throw new NotFoundError(`No unregistered schema matches "${pattern}"`);
    const prefix = request.namePrefix ?? '';
    const tenants = schemas.map((schema) => {
      const name = prefix && schema.startsWith(prefix) ? schema.slice(prefix.length) : schema;
      if (!TENANT_NAME.test(name))
        throw new ValidationError(
          `"${name}" (from schema ${schema}) is not a valid tenant name`,
          'namePrefix',
        );
      return { schema, name, tenantId: randomUUID(), databaseId: randomUUID() };
    });
    const names = await db.tenant.findMany({
      where: { name: { in: tenants.map((t) => t.name) } },
      select: { name: true },
    });
    if (names.length > 0) {
      const taken = names.map((n) => n.name).join(', ');
      throw new ValidationError(`Tenants already exist: ${taken} (use namePrefix)`, 'namePrefix');
    }
    // PENDING until the worker adopted them: runs select ACTIVE tenants, so a refused schema is never migrated.
    await db.$transaction([
      db.tenant.createMany({
        data: tenants.map((t) => ({
          tenantId: t.tenantId,
          name: t.name,
          environment: request.environment ?? 'DEVELOPMENT',
          status: 'PENDING' as const,
        })),
      }),
      db.tenantDatabase.createMany({
        data: tenants.map((t) => ({
          id: t.databaseId,
          tenantId: t.tenantId,
          connectionStringEncrypted: secretBox.sealConnectionString(t.databaseId, config.tenantDatabaseUrl),
          databaseName,
          host: url.hostname,
          port: url.port ? Number(url.port) : 5432,
          status: 'ACTIVE' as const,
          isolation: 'SCHEMA' as const,
          schemaName: t.schema,
          // Not created by this deployment: it carries no ownership marker yet.
          adoptUnmarked: true,
        })),
      }),
    ]);
    return startAdoptRun(
      { tenantIds: tenants.map((t) => t.tenantId), options, dryRun: request.dryRun ?? false },
      actor,
    );
  }
  return { adoptTenants };
}
export type AdoptionService = ReturnType<typeof createAdoptionService>;

function versionMapOf(value: unknown): Record<string, string> | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError('versionMap must be an object of "<their id>": "<our version>"', 'versionMap');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [key, version] of entries) {
    if (typeof version !== 'string' || !/^\d{1,64}$/.test(version)) {
      throw new ValidationError(
        `versionMap["${key}"] must be one of our versions, e.g. "0003"`,
        'versionMap',
      );
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** What an ADOPT run's worker needs to adopt one tenant database. */
export interface AdoptTargetDeps {
  readonly catalog: MigrationCatalog;
  readonly expected: ExpectedFingerprints;
  readonly fingerprints: Pick<FingerprintService, 'compare' | 'recordCheck'>;
  readonly lockTimeoutMs: number;
  /** The deployment's ledger table name (LEDGER_TABLE). */
  readonly ledgerTable: string;
}

/**
 * The work of one ADOPT target: decides the schema's version from the run's options, stamps the
 * ledger unless a dry run (and records the fingerprint), and reports what it did or would do.
 * Throws AdoptionRefusedError with the reason (and its differences) when the schema cannot be adopted.
 */
export function createAdoptTarget({
  catalog,
  expected,
  fingerprints,
  lockTimeoutMs,
  ledgerTable,
}: AdoptTargetDeps) {
  return async function adoptTarget(input: {
    readonly database: TenantDatabase;
    readonly pool: Pool;
    readonly run: Pick<MigrationRun, 'dryRun' | 'adoptOptions'>;
  }): Promise<{ version: string; report: string }> {
    const { database, pool, run } = input;
    const stored = (run.adoptOptions ?? {}) as {
      source?: HistorySource;
      versionMap?: Record<string, string> | null;
    };
    const options: AdoptionOptions = {
      source: stored.source ?? HistorySource.AUTO,
      versionMap: stored.versionMap ?? null,
    };
    const result = await adoptSchema({
      pool,
      target: ledgerTargetOf(database, ledgerTable),
      catalog,
      expected,
      options,
      dryRun: run.dryRun,
      lockTimeoutMs,
    });
    const { decision } = result;
    if (!decision.ok && decision.version !== null && !run.dryRun) {
      // The outlier shows in schemaDrift, its differences against the version it claims (or is nearest to).
      const check = await fingerprints.compare(pool, result.fingerprint, decision.version);
      await fingerprints.recordCheck(database.id, check);
    }
    if (!decision.ok)
      throw new AdoptionRefusedError(
        `adoption refused (${decision.source}): ${decision.reason}`,
        decision.differences,
      );
    if (!run.dryRun)
      await fingerprints.recordCheck(
        database.id,
        await fingerprints.compare(pool, result.fingerprint, decision.version),
      );
    const verb = run.dryRun ? 'would stamp' : 'stamped';
    return {
      version: decision.version,
      report: `-- ${verb} ${database.schemaName} at ${decision.version} (${decision.source}: ${decision.detail})`,
    };
  };
}
