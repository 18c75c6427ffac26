/**
 * Select lists that return control-plane rows in the Prisma client's shapes (camelCase keys,
 * UPPER enum labels, Dates), for the few statements that go over a plain pg pool instead of
 * Prisma (tenants/tenant-registration.ts, runs/run-service.ts's run reads and the run machine's
 * statements in runs/sql/run-statements.ts).
 */
import type { MigrationRun, MigrationRunTarget, Tenant, TenantDatabase } from '../generated/prisma/client.js';

// Columns as the Prisma client names and spells them ($ stands for the table alias).
const TENANT_FIELDS = {
  tenantId: '$.tenant_id::text',
  name: '$.name',
  environment: 'upper($.environment::text)',
  status: 'upper($.status::text)',
  createdAt: '$.created_at',
  updatedAt: '$.updated_at',
  deletedAt: '$.deleted_at',
} satisfies Record<keyof Tenant, string>;

const RUN_FIELDS = {
  id: '$.id::text',
  kind: 'upper($.kind::text)',
  status: 'upper($.status::text)',
  targetVersion: '$.target_version',
  dryRun: '$.dry_run',
  concurrency: '$.concurrency',
  maxFailures: '$.max_failures',
  canarySize: '$.canary_size',
  transactionMode: 'upper($.transaction_mode::text)',
  requestedBy: '$.requested_by',
  allowDrift: '$.allow_drift',
  adoptOptions: '$.adopt_options',
  total: '$.total',
  pending: '$.pending',
  running: '$.running',
  succeeded: '$.succeeded',
  failed: '$.failed',
  skipped: '$.skipped',
  cancelled: '$.cancelled',
  createdAt: '$.created_at',
  updatedAt: '$.updated_at',
  startedAt: '$.started_at',
  finishedAt: '$.finished_at',
  catalogReleaseId: '$.catalog_release_id::text',
  backup: '$.backup',
  backupId: '$.backup_id::text',
} satisfies Record<keyof MigrationRun, string>;

const TARGET_FIELDS = {
  id: '$.id::text',
  runId: '$.run_id::text',
  tenantId: '$.tenant_id::text',
  tenantDatabaseId: '$.tenant_database_id::text',
  position: '$.position',
  canary: '$.canary',
  dryRun: '$.dry_run',
  status: 'upper($.status::text)',
  fromVersion: '$.from_version',
  toVersion: '$.to_version',
  appliedVersions: '$.applied_versions',
  plannedSql: '$.planned_sql',
  error: '$.error',
  errorCode: '$.error_code',
  attempts: '$.attempts',
  createdAt: '$.created_at',
  updatedAt: '$.updated_at',
  startedAt: '$.started_at',
  finishedAt: '$.finished_at',
  durationMs: '$.duration_ms',
  deferredAt: '$.deferred_at',
  serverId: '$.server_id::text',
  schemaName: '$.schema_name',
  jobId: '$.job_id::text',
} satisfies Record<keyof MigrationRunTarget, string>;

const DATABASE_FIELDS = {
  id: '$.id::text',
  tenantId: '$.tenant_id::text',
  connectionStringEncrypted: '$.connection_string_encrypted',
  databaseName: '$.database_name',
  host: '$.host',
  port: '$.port',
  status: 'upper($.status::text)',
  isolation: 'upper($.isolation::text)',
  schemaName: '$.schema_name',
  schemaVersion: '$.schema_version',
  lastError: '$.last_error',
  adoptUnmarked: '$.adopt_unmarked',
  serverId: '$.server_id::text',
  fingerprintHash: '$.fingerprint_hash',
  fingerprintExpectedHash: '$.fingerprint_expected_hash',
  fingerprintMatches: '$.fingerprint_matches',
  fingerprintDifferences: '$.fingerprint_differences',
  fingerprintComputedAt: '$.fingerprint_computed_at',
  createdAt: '$.created_at',
  updatedAt: '$.updated_at',
} satisfies Record<keyof TenantDatabase, string>;

/** The select list of a `control_plane.tenants` row aliased `alias`, keys prefixed with `prefix`. */
export function tenantColumns(alias: string, prefix = ''): string {
  return columns(TENANT_FIELDS, alias, prefix);
}

/** The select list of a `control_plane.migration_runs` row aliased `alias`, keys prefixed with `prefix`. */
export function runColumns(alias: string, prefix = ''): string {
  return columns(RUN_FIELDS, alias, prefix);
}

/** The select list of a `control_plane.migration_run_targets` row aliased `alias`, keys prefixed with `prefix`. */
export function targetColumns(alias: string, prefix = ''): string {
  return columns(TARGET_FIELDS, alias, prefix);
}

/** The select list of a `control_plane.tenant_databases` row aliased `alias`, keys prefixed with `prefix`. */
export function databaseColumns(alias: string, prefix = ''): string {
  return columns(DATABASE_FIELDS, alias, prefix);
}

/**
 * Whether a Prisma query argument (as Pothos hands it to a resolver) asks for nothing beyond the
 * model's own columns, so a whole row read with the select lists above answers it.
 */
export function selectsOnlyColumns(query: object): boolean {
  const { include, select } = query as { include?: object; select?: Record<string, unknown> };
  if (include && Object.keys(include).length > 0) return false;
  return !select || Object.values(select).every((value) => value === true || value === false);
}

/** The keys of `row` that start with `prefix`, without it: one row shape out of a joined row. */
export function unprefixRow<T>(row: Record<string, unknown>, prefix: string): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    if (key.startsWith(prefix)) out[key.slice(prefix.length)] = value;
  }
  return out as T;
}

function columns(fields: Record<string, string>, alias: string, prefix: string): string {
  return Object.entries(fields)
    .map(([name, expr]) => `${expr.replaceAll('$.', `${alias}.`)} AS "${prefix}${name}"`)
    .join(', ');
}
