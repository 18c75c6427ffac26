/**
 * This control plane's deployment id: one row in `control_plane.deployment`, created on first
 * use and never changed. It is the ownership marker written on every tenant schema and database
 * the deployment provisions (see ownership.ts), so two deployments sharing a tenant server can
 * tell their objects apart.
 */
import type { ControlPlaneDb } from '../db/control-plane.js';

/** Reads the deployment id, inserting it first when this control-plane DB has none yet. */
export async function readDeploymentId(db: ControlPlaneDb): Promise<string> {
  const existing = await db.deployment.findUnique({ where: { singleton: true } });
  if (existing) return existing.deploymentId;
  // Processes booting together race here; ON CONFLICT lets one insert win and all read its row.
  await db.$executeRaw`INSERT INTO control_plane.deployment DEFAULT VALUES ON CONFLICT DO NOTHING`;
  const row = await db.deployment.findUniqueOrThrow({ where: { singleton: true } });
  return row.deploymentId;
}

/** A reader of the deployment id that asks the database once per process (the id never changes). */
export function createDeploymentIdReader(db: ControlPlaneDb): () => Promise<string> {
  let pending: Promise<string> | undefined;
  return () => {
    pending ??= readDeploymentId(db).catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
