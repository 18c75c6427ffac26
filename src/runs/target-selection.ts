/** Resolves a tenant selector into the tenant databases a run covers, in position order. */
import type { ControlPlaneTx, ControlPlaneDb } from '../db/control-plane.js';
import { NotFoundError } from '../errors.js';
import type { TenantDatabase } from '../generated/prisma/client.js';
import type { TenantStatus } from '../generated/prisma/enums.js';
import type { TenantSelector } from './types.js';

/** The tenant that stands for the control plane itself: it has no tenant database. */
export const SYSTEM_TENANT_NAME = 'system_admin';
// A non-UUID id can only be a tenant that does not exist; checked before it reaches a uuid cast.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A tenant database chosen for a run, with its tenant's id. */
export type SelectedDatabase = TenantDatabase;

/**
 * The databases of the selected tenants: ids (all must exist and not be deleted), environments,
 * statuses (default ACTIVE); never deleted tenants nor system_admin. Ordered by tenant name.
 */
export async function selectTargetDatabases(
  db: ControlPlaneDb | ControlPlaneTx,
  selector: TenantSelector | null | undefined,
): Promise<SelectedDatabase[]> {
  const ids = selector?.ids ? [...new Set(selector.ids)] : null;
  if (ids) {
    const valid = ids.filter((id) => UUID.test(id));
    const found = await db.tenant.findMany({
      where: { tenantId: { in: valid }, deletedAt: null, name: { not: SYSTEM_TENANT_NAME } },
      select: { tenantId: true },
    });
    const known = new Set(found.map((t) => t.tenantId.toLowerCase()));
    const missing = ids.filter((id) => !known.has(id.toLowerCase()));
    if (missing.length > 0) throw new NotFoundError(`No such tenant: ${missing.join(', ')}`);
  }
  const statuses: TenantStatus[] = selector?.status?.length ? [...selector.status] : ['ACTIVE'];
  const tenants = await db.tenant.findMany({
    where: {
      deletedAt: null,
      name: { not: SYSTEM_TENANT_NAME },
      status: { in: statuses },
      ...(ids ? { tenantId: { in: ids.filter((id) => UUID.test(id)) } } : {}),
      ...(selector?.environment?.length ? { environment: { in: [...selector.environment] } } : {}),
    },
    include: { databases: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] } },
    orderBy: { name: 'asc' },
  });
  return tenants.flatMap((tenant) => tenant.databases);
}
