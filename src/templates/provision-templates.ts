/**
 * Provisioning from templates (issue 16): when a catalog is long (PROVISION_TEMPLATE=auto and at
 * least PROVISION_TEMPLATE_MIN_FILES files), a new tenant is made from the catalog's end state
 * instead of replaying every file: a schema template (SCHEMA isolation, stored in the control plane
 * per catalog and PostgreSQL major) or a template database (DATABASE isolation, one per catalog on
 * each server). Both are built on first use and verified by the expected fingerprint of the
 * catalog's latest version, and so is each tenant made from them. Whatever goes wrong on this path
 * is logged and answered with null: the provisioner then replays the catalog as it always did.
 */
import type pg from 'pg';
import type { Config } from '../config.js';
import { quoteSchema } from '../db/pg.js';
import {
  catalogChecksumOf,
  createExpectedFingerprintsOf,
  type ExpectedFingerprintStore,
} from '../fingerprints/expected-fingerprints.js';
import type { SchemaFingerprint } from '../fingerprints/schema-description.js';
import type { Logger } from '../logger.js';
import { isTransientPgError } from '../migrations/index.js';
import type { MigrateResult, MigrationCatalog, MigrationTarget } from '../migrations/index.js';
import type { DatabaseTemplate, SchemaTemplateRequest } from '../tenants/provisioner.js';
import { ensureDatabaseTemplate, verifyDatabaseCopy } from './database-template.js';
import {
  TemplateMismatchError,
  applySchemaTemplate,
  buildSchemaTemplate,
  isLedgerNotEmpty,
} from './schema-template.js';
import {
  SpareMismatchError,
  claimSpare,
  countSpares,
  deploymentSparePrefix,
  dropOtherSpares,
  makeSpare,
  sparePrefixOf,
} from './spare-schemas.js';
import type { SchemaTemplateStore, StoredSchemaTemplate } from './template-store.js';

/** PROVISION_TEMPLATE: `auto` uses templates for catalogs of PROVISION_TEMPLATE_MIN_FILES or more files. */
export const ProvisionTemplateMode = { AUTO: 'auto', OFF: 'off' } as const;
export type ProvisionTemplateMode = (typeof ProvisionTemplateMode)[keyof typeof ProvisionTemplateMode];

// A template that could not be built or applied is not tried again for this long (per catalog and
// server), so a catalog pg_dump cannot capture costs one failure per process and interval, not one per tenant.
const RETRY_BUILD_AFTER_MS = 10 * 60_000;

export interface ProvisionTemplatesDeps {
  readonly store: SchemaTemplateStore;
  /** Where expected fingerprints are kept (the control plane's table). */
  readonly expectedStore: ExpectedFingerprintStore;
  readonly config: Pick<
    Config,
    | 'provisionTemplate'
    | 'provisionTemplateMinFiles'
    | 'provisionSpareSchemas'
    | 'pgClientBinDir'
    | 'ledgerTable'
  >;
  readonly logger: Logger;
}

/** Creates the template path of provisioning. */
export function createProvisionTemplates({ store, expectedStore, config, logger }: ProvisionTemplatesDeps) {
  // Per catalog checksum: runs pin releases, and each release's catalog has its own expectations.
  const expectedOf = createExpectedFingerprintsOf(expectedStore, config.ledgerTable);
  const schemaTemplates = new WeakMap<pg.Pool, Map<string, Promise<StoredSchemaTemplate>>>();
  // Spares being made, per pool and catalog: one filler at a time.
  const filling = new WeakMap<pg.Pool, Map<string, Promise<void>>>();
  const pendingFills = new Set<Promise<void>>();
  // Template databases known to be finished, per catalog and server.
  const databaseTemplates = new Map<string, Promise<string>>();
  const failedAt = new Map<string, number>();

  function applies(catalog: MigrationCatalog): boolean {
    return (
      config.provisionTemplate === ProvisionTemplateMode.AUTO &&
      catalog.latest !== null &&
      catalog.files.length >= config.provisionTemplateMinFiles
    );
  }

  /** Runs `fn` unless its build failed lately; a failure is logged, remembered, and answered with null. */
  async function guarded<T>(key: string, what: string, fn: () => Promise<T>): Promise<T | null> {
    const failed = failedAt.get(key);
    if (failed !== undefined && Date.now() - failed < RETRY_BUILD_AFTER_MS) return null;
    try {
      const value = await fn();
      failedAt.delete(key);
      return value;
    } catch (error) {
      failedAt.set(key, Date.now());
      logger.warn(`could not build the ${what}; provisioning replays the catalog`, { error });
      return null;
    }
  }

  async function expectedLatest(pool: pg.Pool, catalog: MigrationCatalog): Promise<SchemaFingerprint> {
    const expected = await expectedOf(catalog).forVersion(pool, catalog.latest);
    if (!expected) throw new Error(`catalog has no expected fingerprint for ${catalog.latest}`);
    return expected;
  }

  function schemaTemplateFor(
    request: SchemaTemplateRequest,
    checksum: string,
    expected: SchemaFingerprint,
  ): Promise<StoredSchemaTemplate> {
    let byCatalog = schemaTemplates.get(request.pool);
    if (!byCatalog) schemaTemplates.set(request.pool, (byCatalog = new Map()));
    let pending = byCatalog.get(checksum);
    if (!pending) {
      pending = (async () => {
        const major = await serverMajorOf(request.pool);
        const stored = await store.load(checksum, major);
        if (stored?.fingerprintHash === expected.hash) return stored;
        const built = await buildSchemaTemplate({
          pool: request.pool,
          connectionString: request.connectionString,
          databaseName: request.databaseName,
          catalog: request.catalog,
          catalogChecksum: checksum,
          expected,
          pgClientBinDir: config.pgClientBinDir,
          lockTimeoutMs: request.lockTimeoutMs,
          ledgerTable: config.ledgerTable,
        });
        logger.info('built the schema template of a catalog', {
          catalogChecksum: checksum,
          serverMajor: major,
        });
        return store.save(checksum, major, built);
      })();
      const cached = byCatalog;
      // A failed build is not cached here (guarded() spaces the retries).
      pending.catch(() => cached.delete(checksum));
      byCatalog.set(checksum, pending);
    }
    return pending;
  }

  /**
   * Makes a new SCHEMA tenant from the catalog's template, taking a spare schema when one is free;
   * null when no template applies or it could not be used (logged), and then nothing was changed.
   */
  async function provisionSchema(request: SchemaTemplateRequest): Promise<MigrateResult | null> {
    if (!applies(request.catalog)) return null;
    const checksum = catalogChecksumOf(request.catalog);
    const key = `schema/${checksum}/${request.connectionString}`;
    const prepared = await guarded(key, 'schema template', async () => {
      const expected = await expectedLatest(request.pool, request.catalog);
      return { expected, template: await schemaTemplateFor(request, checksum, expected) };
    });
    if (!prepared) return null;
    const prefix = sparePrefixOf(request.deploymentId, checksum);
    try {
      const made =
        (config.provisionSpareSchemas > 0 ? await takeSpare(request, prefix, prepared.expected) : null) ??
        (await applySchemaTemplate({
          pool: request.pool,
          target: request.target,
          catalog: request.catalog,
          template: prepared.template,
          expected: prepared.expected,
          lockTimeoutMs: request.lockTimeoutMs,
        }));
      // The template works here: the spare that was taken (or the next tenant's) is made now.
      fillSpares(request, prefix, prepared);
      return made;
    } catch (error) {
      // Rolled back: the tenant is as it was, and the replay makes it (or reports why not).
      if (isLedgerNotEmpty(error)) return null;
      logger.warn('the schema template did not apply; provisioning replays the catalog', {
        schema: request.target.schema,
        error,
      });
      // A template that fails for a reason of its own would fail every tenant: rest it a while.
      if (!isTransientPgError(error)) failedAt.set(key, Date.now());
      return null;
    }
  }

  // A spare that is not the expected structure is dropped (logged); the template is applied instead.
  async function takeSpare(
    request: SchemaTemplateRequest,
    prefix: string,
    expected: SchemaFingerprint,
  ): Promise<MigrateResult | null> {
    try {
      return await claimSpare({
        pool: request.pool,
        target: request.target,
        prefix,
        markSql: request.markSql,
        catalog: request.catalog,
        expected,
        lockTimeoutMs: request.lockTimeoutMs,
      });
    } catch (error) {
      if (!(error instanceof SpareMismatchError)) throw error;
      logger.warn('a spare schema is not the expected structure; it is dropped', { spare: error.spare });
      await request.pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(error.spare)} CASCADE`);
      return null;
    }
  }

  /**
   * Tops the spares of this catalog up to PROVISION_SPARE_SCHEMAS in the background (after a
   * tenant took one or was made from the template), and drops this deployment's spares of other
   * catalogs. Failures are logged: the next provisioning applies the template instead.
   */
  function fillSpares(
    request: SchemaTemplateRequest,
    prefix: string,
    prepared: { readonly expected: SchemaFingerprint; readonly template: StoredSchemaTemplate },
  ): void {
    if (config.provisionSpareSchemas === 0) return;
    let byPrefix = filling.get(request.pool);
    if (!byPrefix) filling.set(request.pool, (byPrefix = new Map()));
    if (byPrefix.has(prefix)) return;
    const running = byPrefix;
    const fill = (async () => {
      await dropOtherSpares(request.pool, deploymentSparePrefix(request.deploymentId), prefix);
      // Counted again after each spare: tenants that took one meanwhile started no filler of their
      // own (one at a time), so a count taken once would leave the spares fewer after every such take.
      // Bounded, so tenants taking spares as fast as they are made cannot keep one filler forever.
      for (let made = 0; made < 4 * config.provisionSpareSchemas; made++) {
        if ((await countSpares(request.pool, prefix)) >= config.provisionSpareSchemas) break;
        await makeSpare({
          pool: request.pool,
          databaseName: request.databaseName,
          prefix,
          catalog: request.catalog,
          template: prepared.template,
          expected: prepared.expected,
          lockTimeoutMs: request.lockTimeoutMs,
        });
      }
    })()
      .catch((error: unknown) => logger.warn('could not make spare schemas', { error }))
      .finally(() => running.delete(prefix));
    running.set(prefix, fill);
    pendingFills.add(fill);
    void fill.finally(() => pendingFills.delete(fill));
  }

  /** Resolves when the spares being made now are made (tests and shutdown wait for it). */
  async function sparesSettled(): Promise<void> {
    // WeakMap cannot be listed: pending fills are also kept here while they run.
    await Promise.all([...pendingFills]);
  }

  /** The template database to copy for a new DATABASE tenant; null when none applies (or it failed, logged). */
  async function databaseTemplate(request: {
    readonly connectionString: string;
    readonly catalog: MigrationCatalog;
    readonly deploymentId: string;
    readonly lockTimeoutMs: number;
  }): Promise<DatabaseTemplate | null> {
    const { catalog } = request;
    if (!applies(catalog)) return null;
    const checksum = catalogChecksumOf(catalog);
    const key = `database/${checksum}/${new URL(request.connectionString).host}`;
    const forget = () => void databaseTemplates.delete(key);
    return guarded(key, 'template database', async () => {
      // Checked on the server once per process: a template that went since is found by the copy.
      let ready = databaseTemplates.get(key);
      if (!ready) {
        ready = ensureDatabaseTemplate({
          ...request,
          catalogChecksum: checksum,
          expectedOn: (pool) => expectedLatest(pool, catalog),
          ledgerTable: config.ledgerTable,
        });
        ready.catch(forget);
        databaseTemplates.set(key, ready);
      }
      const name = await ready;
      return {
        name,
        forget,
        async verifyCopy(pool: pg.Pool, target: MigrationTarget) {
          const expected = await expectedLatest(pool, catalog);
          try {
            return await verifyDatabaseCopy(pool, target, catalog, expected, request.lockTimeoutMs);
          } catch (error) {
            if (!(error instanceof TemplateMismatchError)) throw error;
            logger.warn('a copy of the template database is not the expected structure; it is replayed', {
              template: name,
              error,
            });
            forget();
            failedAt.set(key, Date.now());
            return null;
          }
        },
      };
    });
  }

  return { provisionSchema, databaseTemplate, sparesSettled };
}
export type ProvisionTemplates = ReturnType<typeof createProvisionTemplates>;

async function serverMajorOf(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ major: number }>(
    `SELECT current_setting('server_version_num')::int / 10000 AS major`,
  );
  return rows[0]?.major ?? 0;
}
