/**
 * The fleet-rollout harness (issue 16's acceptance, run from outside): a running service, reached
 * only through its GraphQL API, against its own floors on the same PostgreSQL server, in one
 * invocation. It imports nothing of the service, and of the bench only its median and rotation
 * helpers: its floors, its tenants and its timing are its own, so that what it measures shares no
 * measuring method (or bug) with the bench or the thing measured.
 *
 * Each round, in an order rotated every round:
 *  - control plane: the N tenants it created through `createTenant` are rolled back to version 0
 *    (`startRollback`, not timed), the disk settled, then one `startMigrationRun` over them is
 *    timed from the request until a poll of `migrationRun` sees it SUCCEEDED (every target);
 *  - raw floor: each tenant's SQL (the catalog's up files) in one transaction and one round trip,
 *    on 4 plain connections, no bookkeeping;
 *  - node-pg-migrate: its runner with a pool of 4, one transaction per tenant.
 * By default the floors migrate the very schemas the control plane does (rolled back to 0 through
 * the API first, and reverted with the catalog's down files afterwards, neither timed): the same
 * database, the same catalogs' history, the same objects. Fresh schemas (`floorIn`) cost less in a
 * server that holds fewer objects: a PostgreSQL DDL statement costs more the more the database
 * holds (2.4× for the bench's catalog between an empty database and one of 1,000 tenants).
 * Ratios are taken within a round; the summary gives the median and range over the rounds.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { medianRange, segmentOrder, type MedianRange } from '../lib/rounds.js';

export interface HarnessOptions {
  /** The service's GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  readonly endpoint: string;
  /** A bearer token of an ADMIN (deleteTenant needs it); none when the service runs AUTH_DISABLED. */
  readonly token?: string;
  /** A superuser URL of the tenant server: the floors' scratch databases are made there. */
  readonly floorUrl: string;
  /** The directory of the catalog the service runs (its MIGRATIONS_DIR): the floors apply its up files. */
  readonly catalogDir: string;
  readonly tenants: number;
  readonly rounds: number;
  /**
   * What the floors migrate: `same` (default), the harness's own tenants' schemas, rolled back to
   * 0 through the API before and reverted with the catalog's down files after (untimed); `tenants`,
   * fresh schemas in the database the service's tenants live in (on `floorUrl`'s server);
   * `scratch`, fresh schemas in a fresh database per segment, as B1 does. Fresh schemas and
   * databases are dropped once every round is done (see `cleanUps`).
   */
  readonly floorIn?: FloorIn;
  /** Floor connections and node-pg-migrate runners. */
  readonly connections: number;
  /** Names of its tenants and scratch databases start with it. */
  readonly prefix: string;
  /** Keep the harness's tenants at the end instead of deleting them (and their schemas). */
  readonly keepTenants?: boolean;
  /**
   * Seconds to wait after each segment's CHECKPOINT, before its timing starts (default 0). On ext4
   * without a journal, files created within 60 s (360 s while the inode table block is dirty) of
   * thousands being deleted cost more: the control plane's rollback, just before its timed run,
   * deletes every tenant's tables. 90 lets them age out once the kernel has written them back.
   */
  readonly quietSeconds?: number;
  /**
   * VACUUM the tenants' database (and a floor's own) before each timed segment, as autovacuum does
   * between an operator's rollouts on a default server. With autovacuum off (as on this project's
   * CI machines) the catalogs keep the dead rows of every rollback and revert, and each segment
   * pays for all the ones before it: after 9 rollouts and rollbacks of 1,000 tenants in one
   * database, a rollout of the bench's catalog cost the machine 76-93 ms of CPU a tenant; after a
   * VACUUM, 45-56 ms.
   */
  readonly vacuum?: boolean;
  readonly log?: (line: string) => void;
  /** Awaited after each timed segment, before anything else happens (e.g. to look at the server). */
  readonly onSegmentEnd?: (segment: HarnessSegment, round: number) => Promise<void> | void;
}

export const FLOOR_IN = ['same', 'tenants', 'scratch'] as const;
export type FloorIn = (typeof FLOOR_IN)[number];

// What the segments are run with: the options, and the tenants' database when it is vacuumed.
type RunOptions = HarnessOptions & { readonly tenantsUrl: string | null };

export const HARNESS_SEGMENTS = ['cp', 'floor', 'npm'] as const;
export type HarnessSegment = (typeof HARNESS_SEGMENTS)[number];

export interface HarnessRound {
  readonly round: number;
  /** Tenants per second of each segment, in the order they ran. */
  readonly rates: Record<HarnessSegment, number>;
  readonly order: readonly HarnessSegment[];
  readonly toFloor: number;
  readonly toPeer: number;
}

export type HarnessSpread = MedianRange;

export interface HarnessReport {
  readonly tenants: number;
  readonly connections: number;
  readonly rounds: readonly HarnessRound[];
  readonly summary: Record<HarnessSegment | 'toFloor' | 'toPeer', HarnessSpread>;
}

/** Runs the harness; the service must be up and run the catalog in `catalogDir`. */
export async function runFleetRolloutHarness(options: HarnessOptions): Promise<HarnessReport> {
  const log = options.log ?? ((line: string) => console.error(line));
  const api = graphqlClient(options.endpoint, options.token);
  const floorIn = options.floorIn ?? 'same';
  const catalog = await readCatalog(options.catalogDir, floorIn === 'same');
  const rounds: HarnessRound[] = [];
  // Filled as they are made: a failure part of the way still deletes those made.
  const tenantIds: string[] = new Array(options.tenants);
  const cleanUps: (() => Promise<unknown>)[] = [];
  // A floor over the tenants' own schemas leaves them at the catalog's last version while the
  // control plane says 0: the next segment (or the end) reverts them first.
  let revert: (() => Promise<void>) | null = null;
  const reverted = async () => {
    const pending = revert;
    revert = null;
    await pending?.();
  };
  try {
    log(`creating ${options.tenants} tenants through createTenant`);
    await createTenants(api, options.prefix, tenantIds);
    const placement = await placeFloors(api, floorIn, tenantIds);
    // Only a vacuum needs the tenants' database in scratch mode (where they may live elsewhere).
    const tenantsDatabase = !options.vacuum
      ? null
      : placement.kind === 'scratch'
        ? (await locationsOf(api, tenantIds.slice(0, 1)))[0]?.database
        : placement.database;
    const run: RunOptions = {
      ...options,
      tenantsUrl: tenantsDatabase ? withDatabase(options.floorUrl, tenantsDatabase) : null,
    };
    for (let index = 0; index < options.rounds; index++) {
      const order = segmentOrder(HARNESS_SEGMENTS, index);
      const rates = {} as Record<HarnessSegment, number>;
      for (const segment of order) {
        await reverted();
        let seconds: number;
        if (segment === 'cp') seconds = await timeControlPlane(api, run, tenantIds);
        else if (placement.kind !== 'same')
          seconds = await timeFloor(run, segment, catalog, index, placement, cleanUps);
        else {
          const floor = await timeFloorOnTenants(
            api,
            run,
            segment,
            catalog,
            index,
            tenantIds,
            placement,
            cleanUps,
          );
          seconds = floor.seconds;
          revert = floor.revert;
        }
        await options.onSegmentEnd?.(segment, index + 1);
        rates[segment] = options.tenants / seconds;
        log(`round ${index + 1}/${options.rounds} ${segment}: ${rates[segment].toFixed(1)} tenants/s`);
      }
      rounds.push({
        round: index + 1,
        rates,
        order,
        toFloor: rates.cp / rates.floor,
        toPeer: rates.cp / rates.npm,
      });
    }
  } finally {
    await reverted();
    for (const cleanUp of cleanUps) await cleanUp();
    if (!options.keepTenants) await deleteTenants(api, tenantIds, options.prefix);
  }
  const spread = (pick: (r: HarnessRound) => number) => medianRange(rounds.map(pick));
  return {
    tenants: options.tenants,
    connections: options.connections,
    rounds,
    summary: {
      cp: spread((r) => r.rates.cp),
      floor: spread((r) => r.rates.floor),
      npm: spread((r) => r.rates.npm),
      toFloor: spread((r) => r.toFloor),
      toPeer: spread((r) => r.toPeer),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The control plane, through its API only.

type Gql = <T>(query: string, variables?: Record<string, unknown>) => Promise<T>;

function graphqlClient(endpoint: string, token: string | undefined): Gql {
  return async <T>(query: string, variables: Record<string, unknown> = {}) => {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
    if (body.errors?.length || !body.data)
      throw new Error(`GraphQL error: ${body.errors?.map((e) => e.message).join('; ') ?? response.status}`);
    return body.data;
  };
}

/** A mutation's union result: the success's field, or the typed error's message thrown. */
function successOf<T>(result: { __typename: string; message?: string } & T, what: string): T {
  if (result.__typename.endsWith('Success')) return result;
  throw new Error(`${what}: ${result.__typename}: ${result.message ?? ''}`);
}

const CREATE_TENANT = `mutation($input: CreateTenantInput!) { createTenant(input: $input) {
  __typename ... on CreateTenantSuccess { tenant { id } provisioning { id } } ... on Error { message } } }`;

// Requests the harness keeps in flight while it creates or deletes its tenants.
const API_REQUESTS_AT_ONCE = 8;

/**
 * Creates `ids.length` tenants (8 requests at a time), each id into `ids` as it is made, and waits
 * until every provisioning run has ended.
 */
async function createTenants(api: Gql, prefix: string, ids: string[]): Promise<void> {
  const runs: string[] = new Array(ids.length);
  await eachConcurrently(ids.length, async (i) => {
    const data = await api<{ createTenant: { __typename: string; message?: string } }>(CREATE_TENANT, {
      input: { name: tenantName(prefix, i) },
    });
    const created = successOf(
      data.createTenant as { __typename: string; tenant: { id: string }; provisioning: { id: string } },
      'createTenant',
    );
    ids[i] = created.tenant.id;
    runs[i] = created.provisioning.id;
  });
  for (const runId of runs) await waitForRun(api, runId, 1);
}

const TENANT_DATABASE = `query($id: ID!) { node(id: $id) { ... on Tenant {
  databases { isolation databaseName schemaName } } } }`;

/** Where a tenant lives: its (first) database and schema. */
interface TenantLocation {
  readonly database: string;
  readonly schema: string;
}

/** Where each tenant lives, read from the API; only tenants in a schema of one shared database. */
async function locationsOf(api: Gql, ids: readonly string[]): Promise<TenantLocation[]> {
  const locations: TenantLocation[] = new Array(ids.length);
  await eachConcurrently(ids.length, async (i) => {
    const data = await api<{
      node: { databases: { isolation: string; databaseName: string; schemaName: string | null }[] } | null;
    }>(TENANT_DATABASE, { id: ids[i] });
    const database = data.node?.databases[0];
    if (!database?.schemaName || database.isolation !== 'SCHEMA')
      throw new Error(`tenant ${ids[i]} does not live in a schema of a shared database`);
    locations[i] = { database: database.databaseName, schema: database.schemaName };
  });
  if (new Set(locations.map((l) => l.database)).size > 1)
    throw new Error('the tenants live in more than one database; the floors need them in one');
  return locations;
}

/** Where the floors run (`floorIn`), with what they need to know of the harness's tenants. */
async function placeFloors(api: Gql, floorIn: FloorIn, ids: readonly string[]): Promise<FloorPlacement> {
  if (floorIn === 'scratch') return { kind: 'scratch' };
  const locations = await locationsOf(api, floorIn === 'tenants' ? ids.slice(0, 1) : ids);
  const database = locations[0]?.database;
  if (!database) throw new Error('the harness has no tenants');
  return floorIn === 'tenants' ? { kind: 'tenants', database } : { kind: 'same', database, locations };
}

const START_ROLLBACK = `mutation($input: StartRollbackInput!) { startRollback(input: $input) {
  __typename ... on StartRollbackSuccess { run { id } } ... on Error { message } } }`;
const START_RUN = `mutation($input: StartMigrationRunInput!) { startMigrationRun(input: $input) {
  __typename ... on StartMigrationRunSuccess { run { id } } ... on Error { message } } }`;
const RUN_STATUS = `query($id: ID!) { migrationRun(id: $id) { status progress { total succeeded failed } } }`;

/** Rolls the tenants back to version 0 through the API (a no-op for those already there). */
async function rollBack(api: Gql, ids: readonly string[]): Promise<void> {
  const rollback = await api<{ startRollback: { __typename: string } }>(START_ROLLBACK, {
    input: { targetVersion: '0', tenants: { ids }, concurrency: 8 },
  });
  const back = successOf(
    rollback.startRollback as { __typename: string; run: { id: string } },
    'startRollback',
  );
  await waitForRun(api, back.run.id, ids.length);
}

/** Rolls the tenants back to 0 (not timed), settles, then times one run bringing them up. */
async function timeControlPlane(api: Gql, options: RunOptions, ids: readonly string[]): Promise<number> {
  const tenants = { ids };
  await rollBack(api, ids);
  await settle(options);
  const begin = performance.now();
  // The API's default concurrency: what an operator gets without asking.
  const started = await api<{ startMigrationRun: { __typename: string } }>(START_RUN, { input: { tenants } });
  const run = successOf(
    started.startMigrationRun as { __typename: string; run: { id: string } },
    'startMigrationRun',
  );
  await waitForRun(api, run.run.id, ids.length);
  return (performance.now() - begin) / 1000;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'HALTED', 'CANCELLED']);

/**
 * Polls the run every POLL_MS until it ends; throws unless it SUCCEEDED with `expected` targets.
 * A poll costs the API about 2.5 ms of CPU (and the kernel about as much): every 50 ms that was
 * 2-4 % of the control plane's time a tenant (api 2.6 against 0.8 ms a tenant, measured
 * alternated); every 200 ms it is under 1 %, and the end is seen at most 0.2 s late (0.5 % of a
 * 40 s segment).
 */
const POLL_MS = 200;

async function waitForRun(api: Gql, runId: string, expected: number): Promise<void> {
  for (;;) {
    const { migrationRun: run } = await api<{
      migrationRun: { status: string; progress: { total: number; succeeded: number; failed: number } } | null;
    }>(RUN_STATUS, { id: runId });
    if (!run) throw new Error(`run ${runId} not found`);
    if (TERMINAL.has(run.status)) {
      const { succeeded, total, failed } = run.progress;
      if (run.status !== 'SUCCEEDED' || succeeded !== expected)
        throw new Error(
          `run ${runId} ended ${run.status}: ${succeeded}/${total} succeeded, ${failed} failed`,
        );
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const DELETE_TENANT = `mutation($input: DeleteTenantInput!) { deleteTenant(input: $input) {
  __typename ... on Error { message } } }`;

/** Deletes the tenants with their schemas, 8 requests at a time. */
async function deleteTenants(api: Gql, ids: readonly string[], prefix: string): Promise<void> {
  await eachConcurrently(ids.length, async (i) => {
    const id = ids[i];
    if (!id) return;
    const data = await api<{ deleteTenant: { __typename: string; message?: string } }>(DELETE_TENANT, {
      input: { id, confirmName: tenantName(prefix, i), dropData: true },
    });
    successOf(data.deleteTenant, 'deleteTenant');
  });
}

function tenantName(prefix: string, index: number): string {
  return `${prefix}-${String(index + 1).padStart(6, '0')}`;
}

/** Calls `fn` for 0..count-1, `API_REQUESTS_AT_ONCE` calls at a time. */
async function eachConcurrently(count: number, fn: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(API_REQUESTS_AT_ONCE, count) }, async () => {
      for (let i = next++; i < count; i = next++) await fn(i);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The floors, on plain connections to the same server.

interface Catalog {
  /** The up files' SQL in version order. */
  readonly ups: readonly string[];
  /** The down files' SQL, newest first (read when the floors revert the tenants' schemas). */
  readonly downs: readonly string[];
  readonly dir: string;
}

async function readCatalog(dir: string, withDowns: boolean): Promise<Catalog> {
  const names = await readdir(dir);
  const files = names.filter((file) => file.endsWith('.up.sql')).sort();
  if (files.length === 0) throw new Error(`no *.up.sql files in ${dir}`);
  const downs = files.map((file) => file.replace(/\.up\.sql$/, '.down.sql'));
  const missing = downs.filter((file) => !names.includes(file));
  if (withDowns && missing.length > 0)
    throw new Error(
      `the floors revert the tenants' schemas with the catalog's down files, and ${dir} lacks ${missing.join(', ')}; ` +
        'use --floor-in scratch or tenants',
    );
  const read = (file: string) => readFile(join(dir, file), 'utf8');
  return {
    dir,
    ups: await Promise.all(files.map(read)),
    downs: withDowns ? await Promise.all(downs.reverse().map(read)) : [],
  };
}

/**
 * Where a floor runs: fresh schemas in a scratch database per segment or in the tenants' database,
 * or the tenants' own schemas.
 */
type FloorPlacement =
  | { readonly kind: 'scratch' }
  | { readonly kind: 'tenants'; readonly database: string }
  | { readonly kind: 'same'; readonly database: string; readonly locations: readonly TenantLocation[] };

/**
 * Times a floor segment over N fresh schemas: in the database the service's tenants live in, or
 * in a scratch database of its own. Their removal is added to `cleanUps`, run once every round is
 * done: on a filesystem such as ext4 without a journal, files created in the minutes after
 * thousands were deleted cost more (the inode allocator skips each recently deleted inode), so a
 * drop between segments would slow whichever segment came next.
 */
async function timeFloor(
  options: RunOptions,
  segment: Exclude<HarnessSegment, 'cp'>,
  catalog: Catalog,
  round: number,
  placement: Exclude<FloorPlacement, { kind: 'same' }>,
  cleanUps: (() => Promise<unknown>)[],
): Promise<number> {
  const name = segmentName(options, segment, round);
  const database = placement.kind === 'tenants' ? placement.database : null;
  const url = withDatabase(options.floorUrl, database ?? name);
  const schemas = Array.from({ length: options.tenants }, (_, i) =>
    database ? `${name}_${i + 1}` : `tenant_${i + 1}`,
  );
  if (database)
    cleanUps.push(() =>
      // 50 schemas of a few dozen objects each a transaction: within the server's lock table.
      admin(url, (client) =>
        eachBatch(schemas, 50, (batch) => client.query(`DROP SCHEMA IF EXISTS ${batch.join(', ')} CASCADE`)),
      ),
    );
  else {
    cleanUps.push(() =>
      admin(options.floorUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
      ),
    );
    await admin(options.floorUrl, async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    });
  }
  await admin(url, (client) =>
    eachBatch(schemas, 500, (batch) => client.query(batch.map((s) => `CREATE SCHEMA ${s};`).join(''))),
  );
  return timeFloorRun(options, segment, url, catalog, schemas, null);
}

/**
 * Times a floor segment over the harness's own tenants' schemas: rolled back to 0 through the API
 * (not timed), then migrated by the floor behind the control plane's back. Returns, with the time,
 * the revert to run before the next segment: the catalog's down files, each tenant in one
 * transaction (not timed), after which schema and ledger agree again on 0. node-pg-migrate keeps
 * its own table per tenant in a schema of the segment's, dropped once every round is done.
 */
async function timeFloorOnTenants(
  api: Gql,
  options: RunOptions,
  segment: Exclude<HarnessSegment, 'cp'>,
  catalog: Catalog,
  round: number,
  ids: readonly string[],
  placement: Extract<FloorPlacement, { kind: 'same' }>,
  cleanUps: (() => Promise<unknown>)[],
): Promise<{ seconds: number; revert: () => Promise<void> }> {
  const url = withDatabase(options.floorUrl, placement.database);
  const schemas = placement.locations.map((location) => pg.escapeIdentifier(location.schema));
  await rollBack(api, ids);
  let history: string | null = null;
  if (segment === 'npm') {
    const name = segmentName(options, segment, round);
    history = name;
    cleanUps.push(() => admin(url, (client) => client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)));
    await admin(url, (client) => client.query(`CREATE SCHEMA ${name}`));
  }
  const seconds = await timeFloorRun(options, segment, url, catalog, schemas, history);
  return { seconds, revert: () => rawFloor(url, catalog.downs, schemas, options.connections) };
}

/** Settles, then times the raw floor or node-pg-migrate over `schemas`; returns seconds. */
async function timeFloorRun(
  options: RunOptions,
  segment: Exclude<HarnessSegment, 'cp'>,
  url: string,
  catalog: Catalog,
  schemas: readonly string[],
  historySchema: string | null,
): Promise<number> {
  await settle(options, url);
  const begin = performance.now();
  if (segment === 'floor') await rawFloor(url, catalog.ups, schemas, options.connections);
  else await nodePgMigrate(url, catalog, schemas, options.connections, historySchema);
  return (performance.now() - begin) / 1000;
}

function segmentName(options: HarnessOptions, segment: HarnessSegment, round: number): string {
  return `${options.prefix}_${segment}_${round + 1}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
}

async function eachBatch<T>(
  items: readonly T[],
  size: number,
  fn: (batch: T[]) => Promise<unknown>,
): Promise<void> {
  for (let i = 0; i < items.length; i += size) await fn(items.slice(i, i + size));
}

/** Each schema's `files` in one transaction and one round trip, on `connections` connections. */
async function rawFloor(
  url: string,
  files: readonly string[],
  schemas: readonly string[],
  connections: number,
) {
  const script = files.join('\n;\n');
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, () =>
      admin(url, async (client) => {
        for (let i = next++; i < schemas.length; i = next++)
          await client.query(`BEGIN; SET LOCAL search_path TO ${schemas[i]}; ${script}; COMMIT;`);
      }),
    ),
  );
}

/**
 * node-pg-migrate's runner over `schemas` (quoted names), `poolSize` at a time on as many
 * connections. Its history table is `pgmigrations` in each schema, or with `historySchema` one
 * table per tenant there (so that the tenants' own schemas are left as they were).
 */
async function nodePgMigrate(
  url: string,
  catalog: Catalog,
  schemas: readonly string[],
  poolSize: number,
  historySchema: string | null,
) {
  const { runner } = await import('node-pg-migrate');
  const dir = join(tmpdir(), `harness-npm-${process.pid}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  try {
    const files = (await readdir(catalog.dir)).filter((file) => file.endsWith('.up.sql')).sort();
    for (const [i, file] of files.entries())
      await writeFile(join(dir, file.replace(/\.up\.sql$/, '.sql')), `-- Up Migration\n${catalog.ups[i]}\n`);
    let next = 0;
    // Each runner keeps its connection from tenant to tenant (`dbClient`), as the floor's and the
    // worker's do; given a URL it would connect for every tenant, about a third slower.
    await Promise.all(
      Array.from({ length: poolSize }, () =>
        admin(url, async (client) => {
          for (let i = next++; i < schemas.length; i = next++)
            await runner({
              dbClient: client,
              dir,
              // The runner quotes the name itself.
              schema: unquote(schemas[i] as string),
              createSchema: false,
              ...(historySchema
                ? { migrationsSchema: historySchema, migrationsTable: `t_${i + 1}` }
                : { migrationsTable: 'pgmigrations' }),
              direction: 'up',
              count: Number.POSITIVE_INFINITY,
              singleTransaction: true,
              checkOrder: true,
              // Its default lock value is one for the whole database: tenants would go one at a time.
              lockValue: 1_000_000 + i,
              log: () => undefined,
              verbose: false,
            });
        }),
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A name as pg.escapeIdentifier quoted it, unquoted (a plain generated name is returned as is). */
function unquote(name: string): string {
  return name.startsWith('"') ? name.slice(1, -1).replaceAll('""', '"') : name;
}

/**
 * Every segment starts from the same server state: (with `vacuum`) the tenants' database and the
 * segment's own vacuumed, PostgreSQL's dirty buffers written, then (with `quietSeconds`) a wait for
 * the files deleted before it to age out.
 */
async function settle(options: RunOptions, segmentUrl?: string): Promise<void> {
  if (options.tenantsUrl)
    for (const url of new Set([options.tenantsUrl, segmentUrl ?? options.tenantsUrl]))
      await admin(url, (client) => client.query('VACUUM'));
  await admin(options.floorUrl, (client) => client.query('CHECKPOINT'));
  const quiet = options.quietSeconds ?? 0;
  if (quiet > 0) {
    (options.log ?? ((line: string) => console.error(line)))(`waiting ${quiet} s before the timed segment`);
    await new Promise((resolve) => setTimeout(resolve, quiet * 1000));
  }
}

async function admin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

// ---------------------------------------------------------------------------------------------
// Command line.

const USAGE = `usage: npm run harness -- [--endpoint http://127.0.0.1:4000/graphql] [--token T]
  [--floor-url postgresql://postgres@127.0.0.1:5432/postgres] [--catalog migrations/tenant]
  [--tenants 1000] [--rounds 3] [--connections 4] [--prefix harness] [--floor-in same|tenants|scratch]
  [--quiet-seconds 0] [--vacuum]
  [--keep-tenants] [--out bench/results]
  The service must be running (npm run start:api and npm run start:worker, or npm start) with
  MIGRATIONS_DIR set to --catalog; --token defaults to $HARNESS_TOKEN (an ADMIN token).`;

export function parseHarnessArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env) {
  const values = new Map<string, string>();
  let keepTenants = false;
  let vacuum = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--keep-tenants') keepTenants = true;
    else if (arg === '--vacuum') vacuum = true;
    else if (arg.startsWith('--') && argv[i + 1] !== undefined) values.set(arg.slice(2), argv[++i] as string);
    else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  const known = [
    'endpoint',
    'token',
    'floor-url',
    'catalog',
    'tenants',
    'rounds',
    'connections',
    'quiet-seconds',
    'prefix',
    'floor-in',
    'out',
  ];
  for (const key of values.keys())
    if (!known.includes(key)) throw new Error(`unknown option --${key}\n${USAGE}`);
  const int = (key: string, normal: number) => {
    const value = Number(values.get(key) ?? normal);
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`--${key} must be a positive integer\n${USAGE}`);
    return value;
  };
  const prefix = values.get('prefix') ?? 'harness';
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(prefix))
    throw new Error(`--prefix must match [a-z][a-z0-9-]{0,30}\n${USAGE}`);
  const token = values.get('token') ?? env.HARNESS_TOKEN;
  const floorIn = (values.get('floor-in') ?? 'same') as FloorIn;
  if (!FLOOR_IN.includes(floorIn)) throw new Error(`--floor-in must be ${FLOOR_IN.join(', ')}\n${USAGE}`);
  const quietSeconds = Number(values.get('quiet-seconds') ?? 0);
  if (!Number.isInteger(quietSeconds) || quietSeconds < 0)
    throw new Error(`--quiet-seconds must be a whole number of seconds, 0 or more\n${USAGE}`);
  return {
    options: {
      endpoint: values.get('endpoint') ?? 'http://127.0.0.1:4000/graphql',
      ...(token ? { token } : {}),
      floorUrl: values.get('floor-url') ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
      catalogDir: values.get('catalog') ?? 'migrations/tenant',
      tenants: int('tenants', 1000),
      rounds: int('rounds', 3),
      connections: int('connections', 4),
      prefix,
      floorIn,
      keepTenants,
      quietSeconds,
      vacuum,
    } satisfies HarnessOptions,
    outDir: values.get('out') ?? 'bench/results',
  };
}

/** One line per figure: median (min-max) over the rounds. */
export function formatReport(report: HarnessReport): string {
  const f = (s: HarnessSpread, digits = 1) =>
    `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
  const { summary: s } = report;
  return [
    `fleet rollout, N=${report.tenants}, ${report.rounds.length} rounds, median (min-max):`,
    `  control plane                     ${f(s.cp)} tenants/s`,
    `  raw floor, ${report.connections} connections         ${f(s.floor)} tenants/s`,
    `  node-pg-migrate, pool of ${report.connections}         ${f(s.npm)} tenants/s`,
    `  control plane / floor of the round ${f(s.toFloor, 2)}×`,
    `  control plane / node-pg-migrate    ${f(s.toPeer, 2)}×`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { options, outDir } = parseHarnessArgs(process.argv.slice(2));
  const report = await runFleetRolloutHarness(options);
  console.log(formatReport(report));
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, `harness-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${file}`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
