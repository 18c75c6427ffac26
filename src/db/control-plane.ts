import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type ControlPlaneDb = PrismaClient;
/** The client handed to `db.$transaction(async (tx) => ...)` callbacks. */
export type ControlPlaneTx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

export interface ControlPlaneDbOptions {
  /** Connections this process holds to the control-plane database. */
  readonly maxConnections?: number;
}

/** Creates the typed Prisma client over the `control_plane` schema of `databaseUrl`. */
export function createControlPlaneDb(
  databaseUrl: string,
  options: ControlPlaneDbOptions = {},
): ControlPlaneDb {
  const adapter = new PrismaPg(
    { connectionString: databaseUrl, max: options.maxConnections ?? 10 },
    { schema: 'control_plane' },
  );
  return new PrismaClient({ adapter });
}
