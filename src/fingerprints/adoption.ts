/**
 * Adoption: deciding which catalog version an existing schema is at, from a history source
 * (our ledger, Alembic, Flyway, golang-migrate) or from its structure alone, and stamping our
 * ledger accordingly. Adoption runs no DDL but the ledger's own.
 */

import type { Pool } from 'pg';
import { quoteSchema } from '../db/pg.js';
import {
  ledgerTableOf,
  type LedgerLocation,
  highestVersion,
  parseVersion,
  readLedger,
  stampVersion,
  type MigrationCatalog,
  type MigrationTarget,
  type Queryable,
} from '../migrations/index.js';
import type { ExpectedFingerprints } from './expected-fingerprints.js';
import { readSchemaFingerprint } from './read-schema.js';
import type { SchemaFingerprint } from './schema-description.js';
import { diffDescriptions, formatDifference, type SchemaDifference } from './schema-differences.js';

export const HistorySource = {
  AUTO: 'AUTO',
  OWN: 'OWN',
  ALEMBIC: 'ALEMBIC',
  FLYWAY: 'FLYWAY',
  GOLANG_MIGRATE: 'GOLANG_MIGRATE',
  FINGERPRINT: 'FINGERPRINT',
} as const;
export type HistorySource = (typeof HistorySource)[keyof typeof HistorySource];

/** How to read a schema's history. */
export interface AdoptionOptions {
  readonly source: HistorySource;
  /** Their history ids to our versions, for ids that are not our versions ({ "ae1027a6": "0002" }). */
  readonly versionMap?: Readonly<Record<string, string>> | null;
}

/** What adoption decided for one schema. */
export type AdoptionDecision =
  | {
      readonly ok: true;
      readonly version: string;
      /** Where the version came from (AUTO resolved). */
      readonly source: HistorySource;
      readonly detail: string;
    }
  | {
      readonly ok: false;
      readonly source: HistorySource;
      /** The version the history names, or the nearest by structure; null when neither is known. */
      readonly version: string | null;
      readonly reason: string;
      readonly differences: readonly SchemaDifference[];
    };

/** The outcome of `adoptSchema`: the decision and, unless a dry run, the stamp it made. */
export interface AdoptionResult {
  readonly decision: AdoptionDecision;
  readonly fingerprint: SchemaFingerprint;
  readonly stamped: boolean;
}

interface HistoryReading {
  readonly version: string | null;
  readonly detail: string;
}

/** A failed adoption: the reason, readable, and the differences that explain it. */
export class AdoptionRefusedError extends Error {
  constructor(
    readonly reason: string,
    readonly differences: readonly SchemaDifference[],
  ) {
    super(reason);
    this.name = 'AdoptionRefusedError';
  }
}

/**
 * Decides the version of `target.schema` and, unless `dryRun`, stamps our ledger with the
 * catalog's checksums up to it (nothing else is written in the schema).
 */
export async function adoptSchema(input: {
  readonly pool: Pool;
  readonly target: MigrationTarget;
  readonly catalog: MigrationCatalog;
  readonly expected: ExpectedFingerprints;
  readonly options: AdoptionOptions;
  readonly dryRun: boolean;
  readonly lockTimeoutMs?: number;
}): Promise<AdoptionResult> {
  const { pool, target, catalog, expected, options } = input;
  const fingerprint = await readSchemaFingerprint(pool, target.schema, ledgerTableOf(target));
  const decision = decideAdoption({
    source: options.source,
    history: await readHistory(pool, target, options),
    fingerprint,
    expected: await expected.all(pool),
  });
  if (!decision.ok || input.dryRun) return { decision, fingerprint, stamped: false };
  await stampVersion(pool, target, catalog, decision.version, {
    ...(input.lockTimeoutMs ? { lockTimeoutMs: input.lockTimeoutMs } : {}),
  });
  return { decision, fingerprint, stamped: true };
}

/**
 * The pure decision: with a history, its version, cross-checked with the structure (a schema
 * whose structure is not its version's is refused with the differences); with FINGERPRINT, the one
 * version whose expected structure equals the schema's, or a refusal naming the nearest one.
 */
export function decideAdoption(input: {
  readonly source: HistorySource;
  readonly history: { readonly source: HistorySource; readonly reading: HistoryReading | null } | null;
  readonly fingerprint: SchemaFingerprint;
  readonly expected: ReadonlyMap<string, SchemaFingerprint>;
}): AdoptionDecision {
  const { fingerprint, expected } = input;
  if (input.history?.reading) {
    const { source, reading } = input.history;
    if (reading.version === null) return refuse(source, reading.detail, []);
    const [version, wanted] = findExpected(expected, reading.version) ?? [];
    if (!version || !wanted) {
      return refuse(source, `${reading.detail}: version ${reading.version} is not in the catalog`, []);
    }
    if (wanted.hash === fingerprint.hash) return { ok: true, version, source, detail: reading.detail };
    const differences = diffDescriptions(wanted.description, fingerprint.description);
    return refuse(
      source,
      `${reading.detail}, but the structure differs from ${version}: ${summary(differences)}`,
      differences,
      version,
    );
  }
  if (input.source !== HistorySource.FINGERPRINT && input.source !== HistorySource.AUTO) {
    return refuse(input.source, `no ${input.source} history in this schema`, []);
  }
  const matching = [...expected]
    .filter(([, candidate]) => candidate.hash === fingerprint.hash)
    .map(([v]) => v);
  if (matching.length === 1) {
    return {
      ok: true,
      version: matching[0]!,
      source: HistorySource.FINGERPRINT,
      detail: `structure equals ${matching[0]}`,
    };
  }
  if (matching.length > 1) {
    return refuse(
      HistorySource.FINGERPRINT,
      `structure equals versions ${matching.join(', ')}: name the version with a history source`,
      [],
    );
  }
  const nearest = [...expected]
    .map(([version, candidate]) => ({
      version,
      differences: diffDescriptions(candidate.description, fingerprint.description),
    }))
    .sort((a, b) => a.differences.length - b.differences.length)[0];
  if (!nearest) return refuse(HistorySource.FINGERPRINT, 'the catalog is empty', []);
  return refuse(
    HistorySource.FINGERPRINT,
    `no catalog version has this structure; nearest is ${nearest.version}: ${summary(nearest.differences)}`,
    nearest.differences,
    nearest.version,
  );
}

/**
 * Reads the schema's history from `options.source` (AUTO: the first history table present, in
 * the order OWN, ALEMBIC, FLYWAY, GOLANG_MIGRATE); null when the source has no table here or is
 * FINGERPRINT. A reading with a null version is a refusal (a dirty golang-migrate state, an id
 * missing from the versionMap).
 */
export async function readHistory(
  pool: Queryable,
  ledger: LedgerLocation,
  options: AdoptionOptions,
): Promise<{ readonly source: HistorySource; readonly reading: HistoryReading | null } | null> {
  const { schema } = ledger;
  const sources: (keyof typeof READERS)[] =
    options.source === HistorySource.AUTO
      ? [HistorySource.OWN, HistorySource.ALEMBIC, HistorySource.FLYWAY, HistorySource.GOLANG_MIGRATE]
      : options.source === HistorySource.FINGERPRINT
        ? []
        : [options.source];
  const tables = await historyTablesOf(pool, ledger);
  for (const source of sources) {
    if (!tables.has(source)) continue;
    return { source, reading: await READERS[source](pool, ledger, options.versionMap ?? null) };
  }
  return options.source === HistorySource.AUTO || options.source === HistorySource.FINGERPRINT
    ? null
    : {
        source: options.source,
        reading: { version: null, detail: `no ${options.source} history table in ${schema}` },
      };
}

type HistoryReader = (
  pool: Queryable,
  ledger: LedgerLocation,
  map: Readonly<Record<string, string>> | null,
) => Promise<HistoryReading>;

const READERS: Record<'OWN' | 'ALEMBIC' | 'FLYWAY' | 'GOLANG_MIGRATE', HistoryReader> = {
  async OWN(pool, ledger) {
    const version = highestVersion(await readLedger(pool, ledger));
    return { version: version ?? '0', detail: `our ledger says ${version ?? 'nothing applied'}` };
  },
  async ALEMBIC(pool, { schema }, map) {
    const { rows } = await pool.query<{ v: string }>(
      `SELECT version_num AS v FROM ${quoteSchema(schema)}.alembic_version`,
    );
    if (rows.length !== 1)
      return {
        version: null,
        detail: `alembic_version holds ${rows.length} rows (branches are not supported)`,
      };
    return mapped('alembic_version', rows[0]!.v, map);
  },
  async FLYWAY(pool, { schema }, map) {
    const { rows } = await pool.query<{ v: string }>(
      `SELECT version AS v FROM ${quoteSchema(schema)}.flyway_schema_history
        WHERE success AND version IS NOT NULL ORDER BY installed_rank DESC LIMIT 1`,
    );
    if (rows.length === 0)
      return { version: null, detail: 'flyway_schema_history has no successful versioned row' };
    return mapped('flyway_schema_history', rows[0]!.v, map);
  },
  async GOLANG_MIGRATE(pool, { schema }, map) {
    const { rows } = await pool.query<{ v: string; dirty: boolean }>(
      `SELECT version::text AS v, dirty FROM ${quoteSchema(schema)}.${GOLANG_MIGRATE_TABLE}`,
    );
    if (rows.length !== 1)
      return { version: null, detail: `golang-migrate's schema_migrations holds ${rows.length} rows` };
    if (rows[0]!.dirty)
      return {
        version: null,
        detail: `golang-migrate's version ${rows[0]!.v} is dirty (a migration failed half-way)`,
      };
    return mapped('schema_migrations (golang-migrate)', rows[0]!.v, map);
  },
};

function mapped(table: string, id: string, map: Readonly<Record<string, string>> | null): HistoryReading {
  const detail = `${table} says ${id}`;
  if (map && Object.hasOwn(map, id))
    return { version: map[id]!, detail: `${detail} (${map[id]} by the versionMap)` };
  if (map) return { version: null, detail: `${detail}, which the versionMap does not name` };
  const order = parseVersion(id);
  return order === null
    ? { version: null, detail: `${detail}, not one of our versions: give a versionMap` }
    : { version: id, detail };
}

// Versions compare by number ("3" is "0003"); the catalog's own spelling is the expected map's key.
function findExpected(
  expected: ReadonlyMap<string, SchemaFingerprint>,
  version: string,
): [string, SchemaFingerprint] | undefined {
  const order = parseVersion(version);
  return [...expected].find(([key]) => key === version || (order !== null && parseVersion(key) === order));
}

// golang-migrate's own history table (and our ledger's name before control_plane_ledger).
const GOLANG_MIGRATE_TABLE = 'schema_migrations';

async function historyTablesOf(pool: Queryable, ledger: LedgerLocation): Promise<Set<HistorySource>> {
  const ledgerTable = ledgerTableOf(ledger);
  const { rows } = await pool.query<{ relname: string; cols: string[] }>(
    `SELECT c.relname, array_agg(a.attname::text) AS cols
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) GROUP BY c.relname`,
    [ledger.schema, [ledgerTable, GOLANG_MIGRATE_TABLE, 'alembic_version', 'flyway_schema_history']],
  );
  const found = new Set<HistorySource>();
  for (const row of rows) {
    if (row.relname === 'alembic_version') found.add(HistorySource.ALEMBIC);
    if (row.relname === 'flyway_schema_history') found.add(HistorySource.FLYWAY);
    if (row.relname === ledgerTable) found.add(HistorySource.OWN);
    // Our ledger's old name was golang-migrate's too; its columns tell them apart.
    if (row.relname === GOLANG_MIGRATE_TABLE)
      found.add(row.cols.includes('dirty') ? HistorySource.GOLANG_MIGRATE : HistorySource.OWN);
  }
  return found;
}

function refuse(
  source: HistorySource,
  reason: string,
  differences: readonly SchemaDifference[],
  version: string | null = null,
): AdoptionDecision {
  return { ok: false, source, version, reason, differences };
}

function summary(differences: readonly SchemaDifference[]): string {
  return (
    differences.slice(0, 5).map(formatDifference).join('; ') +
    (differences.length > 5 ? `; … ${differences.length - 5} more` : '')
  );
}
