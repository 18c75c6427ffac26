/** Resolves a tenant selector into the tenant databases a run covers, in position order. */
import type { ControlPlaneTx } from '../db/control-plane.js';
import { NotFoundError } from '../errors.js';
import type { TenantSelector } from './types.js';

/** The tenant that stands for the control plane itself: it has no tenant database. */
export const SYSTEM_TENANT_NAME = 'system_admin';
// A non-UUID id can only be a tenant that does not exist; checked before it reaches a uuid cast.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What inserting a fleet run's targets produced. */
export interface InsertedTargets {
  readonly count: number;
  /** The distinct cached versions of the selected databases (null: never migrated). */
  readonly versions: readonly (string | null)[];
}

/**
 * Inserts one PENDING target per database of the selected tenants, in one INSERT ... SELECT:
 * ids (all must exist and not be deleted), environments, statuses (default ACTIVE); never deleted
 * tenants nor system_admin. Positions follow tenant name order; the first `canarySize` are canaries.
 * Set-based on purpose: a fleet of 10,000 tenants must not pass through the process as rows.
 */
export async function insertSelectedTargets(
  tx: ControlPlaneTx,
  runId: string,
  selector: TenantSelector | null | undefined,
  canarySize: number | null,
): Promise<InsertedTargets> {
  const ids = selector?.ids ? [...new Set(selector.ids)] : null;
  if (ids) {
    const valid = ids.filter((id) => UUID.test(id));
    const found = await tx.tenant.findMany({
      where: { tenantId: { in: valid }, deletedAt: null, name: { not: SYSTEM_TENANT_NAME } },
      select: { tenantId: true },
    });
    const known = new Set(found.map((t) => t.tenantId.toLowerCase()));
    const missing = ids.filter((id) => !known.has(id.toLowerCase()));
    if (missing.length > 0) throw new NotFoundError(`No such tenant: ${missing.join(', ')}`);
  }
  const statuses = (selector?.status?.length ? [...selector.status] : ['ACTIVE']).map((s) => s.toLowerCase());
  const environments = selector?.environment?.length
    ? selector.environment.map((e) => e.toLowerCase())
    : null;
  const validIds = ids ? ids.filter((id) => UUID.test(id)) : null;
  const rows = await tx.$queryRaw<{ count: number; versions: (string | null)[] }[]>`
    WITH selected AS (
      SELECT d.tenant_id, d.id, d.schema_version,
             (row_number() OVER (ORDER BY t.name, d.created_at, d.id) - 1)::int AS position
        FROM control_plane.tenants t
        JOIN control_plane.tenant_databases d ON d.tenant_id = t.tenant_id
       WHERE t.deleted_at IS NULL
         AND t.name <> ${SYSTEM_TENANT_NAME}
         AND t.status::text = ANY(${statuses}::text[])
         AND (${validIds}::uuid[] IS NULL OR t.tenant_id = ANY(${validIds}::uuid[]))
         AND (${environments}::text[] IS NULL OR t.environment::text = ANY(${environments}::text[]))
    ), inserted AS (
      INSERT INTO control_plane.migration_run_targets
        (run_id, tenant_id, tenant_database_id, position, canary, from_version)
      SELECT ${runId}::uuid, tenant_id, id, position, position < ${canarySize ?? 0}, schema_version
        FROM selected
      RETURNING from_version
    )
    SELECT count(*)::int AS count, coalesce(array_agg(DISTINCT from_version), '{}') AS versions FROM inserted`;
  return { count: rows[0]?.count ?? 0, versions: rows[0]?.versions ?? [] };
}
