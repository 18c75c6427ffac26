/**
 * Select lists that return control-plane rows in the Prisma client's shapes (camelCase keys,
 * UPPER enum labels, Dates), for the few statements that go over a plain pg pool instead of
 * Prisma (see tenants/tenant-registration.ts and runs/run-reader.ts).
 */
import type { MigrationRun, Tenant } from '../generated/prisma/client.js';

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
} satisfies Record<keyof MigrationRun, string>;

/** The select list of a `control_plane.tenants` row aliased `alias`, keys prefixed with `prefix`. */
export function tenantColumns(alias: string, prefix = ''): string {
  return columns(TENANT_FIELDS, alias, prefix);
}

/** The select list of a `control_plane.migration_runs` row aliased `alias`, keys prefixed with `prefix`. */
export function runColumns(alias: string, prefix = ''): string {
  return columns(RUN_FIELDS, alias, prefix);
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
