import { PrismaPg } from '@prisma/adapter-pg';
import type pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { createLogger } from '../logger.js';
import { createPgPool, resilientClientClass, type ConnectionLossLogger } from './pg.js';

export type ControlPlaneDb = PrismaClient;
/** The client handed to `db.$transaction(async (tx) => ...)` callbacks. */
export type ControlPlaneTx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];
/** Plain pg connections to the control-plane database, for the run machine's statements. */
export type ControlPlanePool = pg.Pool;

// Shown in pg_stat_activity, to tell Prisma's connections from the plain pools'.
const PRISMA_APPLICATION_NAME = 'tenant-control-plane-prisma';

export interface ControlPlaneDbOptions {
  /** Connections this process holds to the control-plane database. */
  readonly maxConnections?: number;
  /** Where a lost connection is reported; defaults to a warn-level logger on stderr. */
  readonly logger?: ConnectionLossLogger;
}

/** Creates the typed Prisma client over the `control_plane` schema of `databaseUrl`. */
export function createControlPlaneDb(
  databaseUrl: string,
  options: ControlPlaneDbOptions = {},
): ControlPlaneDb {
  const logger = options.logger ?? createLogger('warn');
  // The adapter builds its own pool from this config; our client class keeps a lost connection,
  // idle or checked out, from escaping as an uncaught 'error'.
  const adapter = new PrismaPg(
    {
      connectionString: databaseUrl,
      max: options.maxConnections ?? 10,
      application_name: PRISMA_APPLICATION_NAME,
      Client: resilientClientClass(PRISMA_APPLICATION_NAME, logger) as unknown as new () => pg.ClientBase,
    },
    { schema: 'control_plane', onPoolError: () => undefined, onConnectionError: () => undefined },
  );
  return new PrismaClient({ adapter });
}

export interface ControlPlanePoolOptions {
  /** Connections in the pool: one per concurrent job, plus a little room. */
  readonly maxConnections: number;
  /** Shown in pg_stat_activity, to tell these connections from Prisma's. */
  readonly applicationName: string;
  /** Where a lost connection is reported; defaults to a warn-level logger on stderr. */
  readonly logger?: ConnectionLossLogger;
}

/**
 * Creates a small pg pool to the control-plane database for claiming and finishing targets
 * (see runs/run-machine.ts); everything else goes through the Prisma client.
 */
export function createControlPlanePool(
  databaseUrl: string,
  options: ControlPlanePoolOptions,
): ControlPlanePool {
  return createPgPool({
    connectionString: databaseUrl,
    max: options.maxConnections,
    applicationName: options.applicationName,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}
