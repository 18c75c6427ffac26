/**
 * Fingerprints of the fleet: reading a tenant database's structure, comparing it with the
 * expected fingerprint of its cached version, recording the outcome on its tenant_databases row,
 * and grouping the fleet by hash (drift clusters).
 */
import type { Pool } from 'pg';
import type { ControlPlanePool } from '../db/control-plane.js';
import type { TenantDatabase } from '../generated/prisma/client.js';
import { ledgerTargetOf } from '../migrations/ledger-target.js';
import type {
  ExpectedFingerprints,
  ExpectedFingerprintsOf,
  FingerprintCatalog,
} from './expected-fingerprints.js';
import type { ReadAfterCommit } from '../migrations/index.js';
import { readSchemaFingerprint, schemaFingerprintRead } from './read-schema.js';
import type { SchemaFingerprint } from './schema-description.js';
import {
  capDifferences,
  diffDescriptions,
  formatDifference,
  type SchemaDifference,
} from './schema-differences.js';

/** How a tenant database's structure compares with its version's expected one. */
export interface FingerprintCheck {
  readonly hash: string;
  /** Null when the catalog has no such version (the cached version is not one of ours). */
  readonly expectedHash: string | null;
  readonly matchesExpected: boolean | null;
  readonly differences: readonly SchemaDifference[];
  readonly computedAt: Date;
}

/** Which tenants a drift report covers (the API's TenantFilter). */
export interface DriftFilter {
  readonly status?: readonly string[] | null;
  readonly environment?: readonly string[] | null;
  readonly nameContains?: string | null;
  readonly includeDeleted?: boolean | null;
}

/** A group of tenant databases with the same structure at the same cached version. */
export interface DriftCluster {
  readonly hash: string;
  readonly version: string | null;
  /** Whether that structure is the expected one for that version. */
  readonly expected: boolean;
  readonly tenantCount: number;
  /** Up to MAX_CLUSTER_SAMPLE tenant ids, by tenant name. */
  readonly sampleTenantIds: readonly string[];
}

// The most tenants a cluster names; `DriftCluster.tenants(first)` pages within them.
const MAX_CLUSTER_SAMPLE = 100;

export interface FingerprintServiceDeps {
  readonly pool: ControlPlanePool;
  /** The expected structures of the process's own catalog: what a check without a catalog compares with. */
  readonly expected: ExpectedFingerprints;
  /** Those of another catalog (a run's pinned release); default: every catalog is the process's own. */
  readonly expectedOf?: ExpectedFingerprintsOf;
  /** The tenant server's pool of a tenant database (decrypting its connection string). */
  readonly tenantPoolOf: (database: TenantDatabase) => Pool;
  /** The deployment's ledger table name (LEDGER_TABLE). */
  readonly ledgerTable: string;
}

/** Creates the fleet's fingerprint functions. */
export function createFingerprintService({
  pool,
  expected,
  expectedOf,
  tenantPoolOf,
  ledgerTable,
}: FingerprintServiceDeps) {
  const expectedFor = (catalog: FingerprintCatalog | undefined): ExpectedFingerprints =>
    catalog && expectedOf ? expectedOf(catalog) : expected;

  /**
   * Compares a fingerprint with the expected one of `version` in `catalog` (default: the process's
   * own); pure apart from the expected cache.
   */
  async function compare(
    tenantPool: Pool,
    fingerprint: SchemaFingerprint,
    version: string | null,
    catalog?: FingerprintCatalog,
  ): Promise<FingerprintCheck> {
    const wanted = await expectedFor(catalog).forVersion(tenantPool, version);
    const matchesExpected = wanted ? wanted.hash === fingerprint.hash : null;
    // Equal hashes are equal descriptions: the differences are worked out only for a mismatch.
    const differences =
      wanted && !matchesExpected ? diffDescriptions(wanted.description, fingerprint.description) : [];
    return {
      hash: fingerprint.hash,
      expectedHash: wanted?.hash ?? null,
      matchesExpected,
      differences,
      computedAt: new Date(),
    };
  }

  /**
   * Reads the tenant database's structure, compares it with the expected one of `version` (default:
   * its cached version), and records both on its row.
   */
  async function checkDatabase(
    database: TenantDatabase,
    options: {
      readonly pool?: Pool;
      readonly version?: string | null;
      /** Whose expected structures (a VERIFY run's pinned release); default: the process's own catalog. */
      readonly catalog?: FingerprintCatalog;
    } = {},
  ): Promise<FingerprintCheck> {
    const version = options.version === undefined ? database.schemaVersion : options.version;
    const tenantPool = options.pool ?? tenantPoolOf(database);
    const fingerprint = await readDatabase(database, tenantPool);
    const check = await compare(tenantPool, fingerprint, version, options.catalog);
    await recordCheck(database.id, check);
    return check;
  }

  /** The read of a tenant database's structure to send after its move's COMMIT, in the same round trip. */
  function readAfterCommit(database: TenantDatabase): ReadAfterCommit<SchemaFingerprint> {
    return schemaFingerprintRead(ledgerTargetOf(database, ledgerTable).schema, ledgerTable);
  }

  /** Reads a tenant database's structure on `tenantPool` (default: its own read pool). */
  function readDatabase(database: TenantDatabase, tenantPool?: Pool): Promise<SchemaFingerprint> {
    return readSchemaFingerprint(
      tenantPool ?? tenantPoolOf(database),
      ledgerTargetOf(database, ledgerTable).schema,
      ledgerTable,
    );
  }

  /**
   * Replays the expected structures of `catalog` (default: the process's own) on `tenantPool`'s
   * server, unless this process has them.
   */
  async function prepareExpected(tenantPool: Pool, catalog?: FingerprintCatalog): Promise<void> {
    await expectedFor(catalog).all(tenantPool);
  }

  /** A comparison as its tenant_databases row stores it (differences capped). */
  async function recordable(
    tenantPool: Pool,
    fingerprint: SchemaFingerprint,
    version: string | null,
    catalog?: FingerprintCatalog,
  ): Promise<FingerprintCheck> {
    const check = await compare(tenantPool, fingerprint, version, catalog);
    return { ...check, differences: capDifferences(check.differences) };
  }

  /** Writes a check on its tenant_databases row (differences capped). */
  async function recordCheck(databaseId: string, check: FingerprintCheck): Promise<void> {
    await pool.query(
      `UPDATE control_plane.tenant_databases
          SET fingerprint_hash = $2, fingerprint_expected_hash = $3, fingerprint_matches = $4,
              fingerprint_differences = $5::jsonb, fingerprint_computed_at = $6
        WHERE id = $1`,
      [
        databaseId,
        check.hash,
        check.expectedHash,
        check.matchesExpected,
        JSON.stringify(capDifferences(check.differences)),
        check.computedAt,
      ],
    );
  }

  /** The fleet grouped by fingerprint and cached version, expected clusters first, then by size. */
  async function schemaDrift(filter: DriftFilter | null | undefined): Promise<DriftCluster[]> {
    const where = ['d.fingerprint_hash IS NOT NULL'];
    const params: unknown[] = [MAX_CLUSTER_SAMPLE];
    if (!filter?.includeDeleted) where.push('t.deleted_at IS NULL');
    if (filter?.status?.length) {
      params.push(filter.status.map((s) => s.toLowerCase()));
      where.push(`t.status::text = ANY($${params.length}::text[])`);
    }
    if (filter?.environment?.length) {
      params.push(filter.environment.map((s) => s.toLowerCase()));
      where.push(`t.environment::text = ANY($${params.length}::text[])`);
    }
    if (filter?.nameContains) {
      params.push(filter.nameContains);
      where.push(`strpos(lower(t.name), lower($${params.length})) > 0`);
    }
    const { rows } = await pool.query<{
      hash: string;
      version: string | null;
      expected: boolean;
      n: number;
      sample: string[];
    }>(
      `SELECT d.fingerprint_hash AS hash, d.schema_version AS version,
              coalesce(bool_and(d.fingerprint_matches), false) AS expected, count(*)::int AS n,
              (array_agg(t.tenant_id::text ORDER BY t.name))[1:$1] AS sample
         FROM control_plane.tenant_databases d JOIN control_plane.tenants t ON t.tenant_id = d.tenant_id
        WHERE ${where.join(' AND ')}
        GROUP BY d.fingerprint_hash, d.schema_version
        ORDER BY expected DESC, n DESC, d.schema_version NULLS FIRST, d.fingerprint_hash`,
      params,
    );
    return rows.map((row) => ({
      hash: row.hash,
      version: row.version,
      expected: row.expected,
      tenantCount: row.n,
      sampleTenantIds: row.sample,
    }));
  }

  return {
    checkDatabase,
    compare,
    recordCheck,
    schemaDrift,
    readAfterCommit,
    readDatabase,
    prepareExpected,
    recordable,
  };
}
export type FingerprintService = ReturnType<typeof createFingerprintService>;

/** A check's differences as the lines a target's error or the CLI shows. */
export function describeDifferences(differences: readonly SchemaDifference[], limit = 5): string {
  const lines = differences.slice(0, limit).map(formatDifference);
  if (differences.length > limit) lines.push(`… ${differences.length - limit} more`);
  return lines.join('; ');
}
