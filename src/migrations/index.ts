/** The migration engine's public API: catalogs, planning, applying, stamping and status. */
export * from './types.js';
export { loadCatalog, buildCatalog, createCatalog, parseMigrationFileName, parseVersion, checksumOf, fileNameOf, isTransactional } from './catalog.js';
export type { CatalogSource, FileKind, ParsedFileName } from './catalog.js';
export { loadSqlParser, analyzeSql, SqlSyntaxError } from './sql-analysis.js';
export type { SqlAnalysis, SqlFinding } from './sql-analysis.js';
export type { CatalogProblem } from './errors.js';
export {
  CatalogError,
  ForeignLedgerError,
  TransactionClosedError,
  DriftError,
  IrreversibleMigrationError,
  MigrationFailedError,
  UnknownVersionError,
  isTransientPgError,
  lineAtPosition,
} from './errors.js';
export { planUp, planDown, detectDrift, assertNoDrift, groupSteps, renderPlanSql, highestVersion, sortLedger } from './planner.js';
export type { RenderPlanOptions } from './planner.js';
export { LEDGER_TABLE, LEGACY_LEDGER_TABLE, ledgerTableOf, ensureLedger, readLedger, hasLedger, insertLedgerEntry, deleteLedgerEntry } from './ledger.js';
export type { LedgerLocation } from './ledger.js';
export { advisoryLockKey, schemaLockKey } from './advisory-lock.js';
export { DEFAULT_LOCK_TIMEOUT_MS, withTargetTransaction, withTargetSession } from './target-session.js';
export { migrateUp, migrateDown } from './tenant-migrator.js';
export { EXTENSIONS_SCHEMA, searchPathOf } from './extensions.js';
export type { MigrateDownOptions, MigrateUpOptions, MigrateUpResult } from './tenant-migrator.js';
export { stampVersion } from './stamp.js';
export type { StampResult } from './stamp.js';
export { getStatus, getHistory, previewUp } from './status.js';
export type { HistoryEntry } from './status.js';
export { migrateControlPlane, ensureDatabase, CONTROL_PLANE_TARGET } from './control-plane.js';
export type { MigrateControlPlaneOptions } from './control-plane.js';
export { splitSqlStatements } from './sql-statements.js';
