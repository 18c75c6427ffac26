/**
 * `adoptTenants`: registers the existing schemas that match a pattern on a database server as
 * PENDING tenants and starts an ADOPT run over them; the worker decides each one's version
 * (adoption.ts) and stamps its ledger. A schema already registered is left out. A dry run
 * registers nothing: its run's targets name the schemas themselves and report what adoption
 * would do with each.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { databaseOf } from '../config.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { MigrationRun, TenantEnvironment } from '../generated/prisma/client.js';
import { EXTENSIONS_SCHEMA, type MigrationCatalog } from '../migrations/index.js';
import { ledgerTargetOf, type TenantDatabaseLocation } from '../migrations/ledger-target.js';
import { DEFAULT_SERVER_NAME, parseServerUrl } from '../servers/server-service.js';
import { AdoptionRefusedError, HistorySource, adoptSchema, type AdoptionOptions } from './adoption.js';
import type { ExpectedFingerprints } from './expected-fingerprints.js';
import type { FingerprintService } from './fingerprint-service.js';

/** What adoptTenants takes (the API's AdoptTenantsInput). */
export interface AdoptTenantsRequest {
  /** The database server's id or name; default: the `default` server. */
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

/** What an ADOPT run stores for its targets (`migration_runs.adopt_options`). */
export interface StoredAdoptOptions {
  readonly source: HistorySource;
  readonly versionMap: Readonly<Record<string, string>> | null;
  /** A dry run's: the tenants adoption would register (their names and environment). */
  readonly namePrefix?: string | null;
  readonly environment?: TenantEnvironment;
}

/** An ADOPT run to start: over tenants just registered, or (a dry run) over unregistered schemas. */
export type AdoptRunRequest =
  | {
      readonly tenantIds: readonly string[];
      readonly options: StoredAdoptOptions;
      readonly dryRun: false;
    }
  | {
      readonly schemas: { readonly serverId: string; readonly names: readonly string[] };
      readonly options: StoredAdoptOptions;
      readonly dryRun: true;
    };

export interface AdoptionServiceDeps {
  readonly db: ControlPlaneDb;
  readonly secretBox: Pick<SecretBox, 'sealConnectionString' | 'openConnectionString'>;
  /** A pool on a tenant server, for reading its schemas. */
  readonly poolFor: (connectionString: string) => Pool;
  readonly startAdoptRun: (request: AdoptRunRequest, actor: { name: string }) => Promise<MigrationRun>;
}

// Schemas that are never tenants: the system's own and ours.
const NOT_TENANTS = ['public', 'information_schema', 'control_plane', EXTENSIONS_SCHEMA];
// Name prefixes of schemas that are never tenants: the system's (pg_catalog, pg_toast, pg_temp_N)
// and the provisioning templates' spares (`cp_spare_…`, spare-schemas.ts) and scratch schemas
// (`cp_template_…`, schema-template.ts). A spare holds the whole catalog and its ledger, so any
// pattern that reached it would adopt it cleanly, and renaming it for a new tenant would then
// move a registered tenant's schema away.
const NOT_TENANT_PREFIXES = ['pg_', 'cp_spare_', 'cp_template_'];
const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Creates adoptTenants. */
export function createAdoptionService({ db, secretBox, poolFor, startAdoptRun }: AdoptionServiceDeps) {
  async function adoptTenants(request: AdoptTenantsRequest, actor: { name: string }): Promise<MigrationRun> {
    const pattern = request.schemaPattern.trim();
    if (pattern === '' || pattern === '%') {
      throw new ValidationError('schemaPattern must name some schemas, e.g. "legacy_%"', 'schemaPattern');
    }
    const environment = request.environment ?? 'DEVELOPMENT';
    const options: StoredAdoptOptions = {
      source: request.historySource ?? HistorySource.AUTO,
      versionMap: versionMapOf(request.versionMap),
    };
    const server = await findServer(request.server);
    const serverUrl = secretBox.openConnectionString(server);
    const { rows } = await poolFor(serverUrl).query<{ schema: string }>(
      `SELECT nspname AS schema FROM pg_namespace
        WHERE nspname LIKE $1 AND nspname <> ALL ($2::text[])
          AND NOT EXISTS (SELECT 1 FROM unnest($3::text[]) AS p(prefix) WHERE starts_with(nspname, p.prefix))
        ORDER BY nspname`,
      [pattern, NOT_TENANTS, NOT_TENANT_PREFIXES],
    );
    // Schema tenants live in the database the server's URL names (as tenant placement puts them).
    const databaseName = databaseOf(serverUrl);
    const { host, port } = parseServerUrl(serverUrl);
    // Registered is where the row says the schema is: on this server, or at its host and port
    // (the location's unique key), as rows from before database servers and a second server
    // entry for the same PostgreSQL name it.
    const registered = await db.tenantDatabase.findMany({
      where: {
        databaseName,
        schemaName: { in: rows.map((r) => r.schema) },
        OR: [{ serverId: server.id }, { host, port }],
      },
      select: { schemaName: true },
    });
    const taken = new Set(registered.map((r) => r.schemaName));
    const schemas = rows.map((r) => r.schema).filter((schema) => !taken.has(schema));
    if (schemas.length === 0)
      throw new NotFoundError(`No unregistered schema matches "${pattern}" on server ${server.name}`);
    const prefix = request.namePrefix ?? '';
    const tenants = schemas.map((schema) => ({
      schema,
      name: tenantNameOf(schema, prefix),
      tenantId: randomUUID(),
      databaseId: randomUUID(),
    }));
    const names = await db.tenant.findMany({
      where: { name: { in: tenants.map((t) => t.name) } },
      select: { name: true },
    });
    if (names.length > 0) {
      const taken = names.map((n) => n.name).join(', ');
      throw new ValidationError(`Tenants already exist: ${taken} (use namePrefix)`, 'namePrefix');
    }
    if (request.dryRun) {
      return startAdoptRun(
        {
          schemas: { serverId: server.id, names: schemas },
          options: { ...options, namePrefix: request.namePrefix ?? null, environment },
          dryRun: true,
        },
        actor,
      );
    }
    // PENDING until the worker adopted them: runs select ACTIVE tenants, so a refused schema is never migrated.
    await db.$transaction([
      db.tenant.createMany({
        data: tenants.map((t) => ({
          tenantId: t.tenantId,
          name: t.name,
          environment,
          status: 'PENDING' as const,
        })),
      }),
      db.tenantDatabase.createMany({
        data: tenants.map((t) => ({
          id: t.databaseId,
          tenantId: t.tenantId,
          connectionStringEncrypted: secretBox.sealConnectionString(t.databaseId, serverUrl),
          databaseName,
          host,
          port,
          serverId: server.id,
          status: 'ACTIVE' as const,
          isolation: 'SCHEMA' as const,
          schemaName: t.schema,
          // Not created by this deployment: it carries no ownership marker yet.
          adoptUnmarked: true,
        })),
      }),
    ]);
    return startAdoptRun({ tenantIds: tenants.map((t) => t.tenantId), options, dryRun: false }, actor);
  }

  /** The server by id or name (default: `default`); NotFoundError when there is none. */
  async function findServer(server: string | null | undefined) {
    const wanted = server?.trim() || DEFAULT_SERVER_NAME;
    const found = await db.databaseServer.findFirst({
      where: UUID.test(wanted) ? { id: wanted } : { name: wanted },
      select: { id: true, name: true, connectionStringEncrypted: true },
    });
    if (!found) throw new NotFoundError(`No such database server: ${wanted}`);
    return found;
  }

  return { adoptTenants };
}
export type AdoptionService = ReturnType<typeof createAdoptionService>;

/** The name of the tenant adopting `schema` registers: the schema's name without `prefix`. */
export function tenantNameOf(schema: string, prefix: string | null | undefined): string {
  const name = prefix && schema.startsWith(prefix) ? schema.slice(prefix.length) : schema;
  if (!TENANT_NAME.test(name)) {
    throw new ValidationError(`"${name}" (from schema ${schema}) is not a valid tenant name`, 'namePrefix');
  }
  return name;
}

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

/** What an ADOPT run's worker needs to adopt one schema. */
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
    /** The tenant database registered for the schema; null for a dry run's unregistered schema. */
    readonly databaseId: string | null;
    readonly location: TenantDatabaseLocation;
    readonly pool: Pool;
    readonly run: Pick<MigrationRun, 'dryRun' | 'adoptOptions'>;
  }): Promise<{ version: string; report: string }> {
    const { databaseId, location, pool, run } = input;
    const stored = (run.adoptOptions ?? {}) as Partial<StoredAdoptOptions>;
    const options: AdoptionOptions = {
      source: stored.source ?? HistorySource.AUTO,
      versionMap: stored.versionMap ?? null,
    };
    const target = ledgerTargetOf(location, ledgerTable);
    const result = await adoptSchema({
      pool,
      target,
      catalog,
      expected,
      options,
      dryRun: run.dryRun,
      lockTimeoutMs,
    });
    const { decision } = result;
    // A dry run records nothing, the fingerprint included.
    const recordOn = run.dryRun ? null : databaseId;
    if (!decision.ok && decision.version !== null && recordOn) {
      // The outlier shows in schemaDrift, its differences against the version it claims (or is nearest to).
      const check = await fingerprints.compare(pool, result.fingerprint, decision.version);
      await fingerprints.recordCheck(recordOn, check);
    }
    if (!decision.ok)
      throw new AdoptionRefusedError(
        `adoption refused (${decision.source}): ${decision.reason}`,
        decision.differences,
      );
    if (recordOn)
      await fingerprints.recordCheck(
        recordOn,
        await fingerprints.compare(pool, result.fingerprint, decision.version),
      );
    const verb = run.dryRun ? 'would stamp' : 'stamped';
    return {
      version: decision.version,
      report: `-- ${verb} ${target.schema} at ${decision.version} (${decision.source}: ${decision.detail})`,
    };
  };
}
