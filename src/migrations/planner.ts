/**
 * Pure planning: which files an up or down would run against a ledger, what has drifted, and
 * the SQL a plan would execute. No I/O, so every decision is unit-tested.
 */
import { fileNameOf, parseVersion } from './catalog.js';
import { DriftError, IrreversibleMigrationError, UnknownVersionError } from './errors.js';
import { DriftKind, TransactionMode } from './types.js';
import type { Drift, LedgerEntry, MigrationCatalog, MigrationFile, Plan } from './types.js';

/** Plans the pending files up to `toVersion` (inclusive; default the latest), with any drift attached. */
export function planUp(catalog: MigrationCatalog, ledger: readonly LedgerEntry[], toVersion?: string | null): Plan {
  const target = toVersion ? catalog.require(toVersion) : null;
  const limit = target?.order ?? catalog.files.at(-1)?.order ?? 0n;
  const applied = new Set(ledger.map((entry) => orderOf(entry.version)));
  const steps = catalog.files.filter((file) => file.order <= limit && !applied.has(file.order));
  const fromVersion = highestVersion(ledger);
  const last = steps.at(-1);
  const toAfter =
    last && (fromVersion === null || last.order > orderOf(fromVersion)) ? last.version : fromVersion;
  return { direction: 'up', fromVersion, toVersion: toAfter, steps, drift: detectDrift(catalog, ledger) };
}

/**
 * Plans reverting every applied file above `toVersion` ("0" reverts everything), newest first.
 * Throws IrreversibleMigrationError when a step lacks a down file and DriftError on drift.
 */
export function planDown(catalog: MigrationCatalog, ledger: readonly LedgerEntry[], toVersion: string): Plan {
  const limit = parseVersion(toVersion);
  if (limit === null || (limit !== 0n && !catalog.find(toVersion))) throw new UnknownVersionError(toVersion);
  const drift = detectDrift(catalog, ledger);
  const above = sortLedger(ledger).filter((entry) => orderOf(entry.version) > limit);
  const blocking = drift.filter((d) => above.some((entry) => entry.version === d.version));
  if (blocking.length > 0) throw new DriftError(null, blocking);
  const steps = above.reverse().map((entry) => catalog.require(entry.version));
  const irreversible = steps.find((file) => !file.reversible);
  if (irreversible) throw new IrreversibleMigrationError(irreversible.version, fileNameOf(irreversible));
  const remaining = sortLedger(ledger).filter((entry) => orderOf(entry.version) <= limit);
  return {
    direction: 'down',
    fromVersion: highestVersion(ledger),
    toVersion: remaining.at(-1)?.version ?? null,
    steps,
    drift,
  };
}

/** Applied files whose checksum changed on disk, and applied versions no longer in the catalog. */
export function detectDrift(catalog: MigrationCatalog, ledger: readonly LedgerEntry[]): Drift[] {
  const drift: Drift[] = [];
  for (const entry of sortLedger(ledger)) {
    const file = catalog.find(entry.version);
    if (!file) {
      drift.push({
        kind: DriftKind.MISSING_FROM_CATALOG,
        version: entry.version,
        name: entry.name,
        message: `applied migration ${entry.version}_${entry.name} is missing from the catalog`,
      });
    } else if (file.checksum !== entry.checksum.trim()) {
      drift.push({
        kind: DriftKind.CHECKSUM_MISMATCH,
        version: entry.version,
        name: entry.name,
        message: `${fileNameOf(file)} changed after it was applied (checksum ${short(entry.checksum)} applied, ${short(file.checksum)} on disk)`,
      });
    }
  }
  return drift;
}

/** Throws DriftError when the plan found drift; up is blocked until the drift is resolved. */
export function assertNoDrift(plan: Plan, schema: string | null = null): void {
  if (plan.drift.length > 0) throw new DriftError(schema, plan.drift);
}

/**
 * Splits a plan's steps into the units that run together: in PER_TENANT mode consecutive
 * transactional files share one transaction; a no-transaction file is always alone.
 */
export function groupSteps(plan: Plan, mode: TransactionMode): MigrationFile[][] {
  const groups: MigrationFile[][] = [];
  let current: MigrationFile[] = [];
  for (const file of plan.steps) {
    if (!isStepTransactional(plan, file)) {
      if (current.length > 0) groups.push(current);
      groups.push([file]);
      current = [];
    } else if (mode === TransactionMode.PER_MIGRATION) {
      groups.push([file]);
    } else {
      current.push(file);
    }
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Whether a step of `plan` runs inside a transaction (its up or down file, per direction). */
export function isStepTransactional(plan: Pick<Plan, 'direction'>, file: MigrationFile): boolean {
  return plan.direction === 'up' ? file.transactional : file.downTransactional;
}

/** Options of `renderPlanSql`. */
export interface RenderPlanOptions {
  readonly schema?: string;
  readonly mode?: TransactionMode;
}

/** The SQL a plan would run, file by file with a header comment, wrapped in BEGIN/COMMIT where it applies. */
export function renderPlanSql(plan: Plan, options: RenderPlanOptions = {}): string {
  const mode = options.mode ?? TransactionMode.PER_TENANT;
  if (plan.steps.length === 0) return `-- Nothing to do: already at ${plan.fromVersion ?? 'no version'}.\n`;
  const out: string[] = [
    `-- ${plan.direction === 'up' ? 'Migrate' : 'Roll back'}${options.schema ? ` schema ${options.schema}` : ''} ` +
      `from ${plan.fromVersion ?? 'nothing'} to ${plan.toVersion ?? 'nothing'} (${plan.steps.length} file(s), ${mode})`,
  ];
  for (const group of groupSteps(plan, mode)) {
    const transactional = group.every((file) => isStepTransactional(plan, file));
    out.push('');
    if (transactional) {
      out.push('BEGIN;');
      if (options.schema) out.push(`SET LOCAL search_path TO ${options.schema}, public;`);
    } else if (options.schema) {
      out.push(`SET search_path TO ${options.schema}, public;`);
    }
    for (const file of group) {
      const sql = plan.direction === 'up' ? file.upSql : (file.downSql ?? '');
      out.push(`-- ${fileNameOf(file, plan.direction)}`, sql.trimEnd());
      if (plan.direction === 'up' && file.verifySql !== null) {
        out.push(`-- verify: ${fileNameOf(file, 'verify')} (a failure rolls the step back)`, file.verifySql.trimEnd());
      }
      out.push(
        plan.direction === 'up'
          ? `-- ledger: record ${file.version} (${file.name}), checksum ${file.checksum}`
          : `-- ledger: remove ${file.version} (${file.name})`,
      );
    }
    if (transactional) out.push('COMMIT;');
  }
  return `${out.join('\n')}\n`;
}

/** Sorts ledger entries by numeric version. */
export function sortLedger(ledger: readonly LedgerEntry[]): LedgerEntry[] {
  return [...ledger].sort((a, b) => compareOrders(orderOf(a.version), orderOf(b.version)));
}

/** The highest applied version of a ledger, or null. */
export function highestVersion(ledger: readonly LedgerEntry[]): string | null {
  return sortLedger(ledger).at(-1)?.version ?? null;
}

function orderOf(version: string): bigint {
  return parseVersion(version) ?? -1n;
}

function compareOrders(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function short(checksum: string): string {
  return checksum.trim().slice(0, 12);
}
