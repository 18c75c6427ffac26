import type { GraphQLSchema } from 'graphql';
import { auditMutations } from './audit.js';
import { builder } from './builder.js';
import './types/scalars.js';
import './types/enums.js';
import './types/errors.js';
import './types/viewer.js';
import './types/api-token.js';
import './types/migration.js';
import './types/tenant-database.js';
import './types/database-server.js';
import './types/tenant.js';
import './types/drift-cluster.js';
import './types/adoption.js';
import './types/tenant-backup.js';
import './types/migration-run-target.js';
import './types/migration-run.js';
import './types/migration-run-event.js';
import './types/system-config.js';

let built: GraphQLSchema | null = null;

/** The executable schema (built once): every type of ./types, every mutation audited. */
export function buildSchema(): GraphQLSchema {
  built ??= auditMutations(builder.toSchema({ sortSchema: true }));
  return built;
}
