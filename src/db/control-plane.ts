import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type ControlPlaneDb = PrismaClient;
/** The client handed to `db.$transaction(async (tx) => ...)` callbacks. */
export type ControlPlaneTx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];
/** Plain pg connections to the control-plane database, for the run machine's statements. */
export type ControlPlanePool = pg.Pool;

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

export interface ControlPlanePoolOptions {
  /** Connections in the pool: one per concurrent job, plus a little room. */
  readonly maxConnections: number;
  /** Shown in pg_stat_activity, to tell these connections from Prisma's. */
  readonly applicationName: string;
}

/**
 * Creates a small pg pool to the control-plane database for claiming and finishing targets
 * (see runs/run-machine.ts); everything else goes through the Prisma client.
 */
export function createControlPlanePool(
  databaseUrl: string,
  options: ControlPlanePoolOptions,
): ControlPlanePool {
  return new pg.Pool({
    connectionString: databaseUrl,
    max: options.maxConnections,
    application_name: options.applicationName,
  });
}
