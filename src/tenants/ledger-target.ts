/** Where a tenant database's ledger lives: the engine's own function (runs and the CLI use it too). */
export {
  DATABASE_ISOLATION_SCHEMA,
  ledgerTargetOf,
  type TenantDatabaseLocation,
} from '../migrations/ledger-target.js';
