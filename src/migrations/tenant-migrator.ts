/**
 * Applies and reverts catalog files on one migration target (a schema), under its advisory
 * lock, re-planning from the ledger inside the lock so concurrent runners never apply a file twice.
 */
import type { Pool, PoolClient } from 'pg';
import { quoteSchema } from '../db/pg.js';
import { BatchFailedError, applyFile, applyGroup, applyGroupBatched } from './apply-file.js';
import { prepareDatabaseSql } from './extensions.js';
import { ForeignLedgerError } from './errors.js';
import {
  FOREIGN_LEDGER_SQLSTATE,
  adoptLegacyLedgerSql,
  ensureAndReadLedger,
  ensureAndReadLedgerSql,
  ledgerFromResults,
  readLedger,
} from './ledger.js';
import { migrateUpInOneTrip } from './one-trip.js';
import { assertNoDrift, groupSteps, isStepTransactional, planDown, planUp } from './planner.js';
import { DEFAULT_LOCK_TIMEOUT_MS, withTargetSession, withTargetTransaction } from './target-session.js';
import { TransactionMode } from './types.js';
import type {
  AfterCommitRead,
  AppliedStep,
  MigrateOptions,
  MigrateResult,
  MigrationCatalog,
  MigrationFile,
  MigrationTarget,
  Plan,
  ReadAfterCommit,
} from './types.js';

/** Options of `migrateDown`: the version to return to ("0" reverts everything). */
export interface MigrateDownOptions extends Omit<MigrateOptions, 'toVersion'> {
  readonly toVersion: string;
}

/** Options of `migrateUp`; `readAfterCommit` rides on the one-trip path only. */
export interface MigrateUpOptions<T> extends MigrateOptions {
  /**
   * Statements to send after the move's COMMIT in its one round trip (the caller's read of the end
   * state). The careful path does not carry them: its result then has no `afterCommit`, and the
   * caller reads on its own.
   */
  readonly readAfterCommit?: ReadAfterCommit<T>;
}

/** What `migrateUp` did, with what a read after its COMMIT came to when one rode along. */
export interface MigrateUpResult<T> extends MigrateResult {
  readonly afterCommit?: AfterCommitRead<T>;
}

/** Applies the pending files of `catalog` to `target` up to `options.toVersion` (default: latest). */
export async function migrateUp<T = never>(
  pool: Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
  options: MigrateUpOptions<T> = {},
): Promise<MigrateUpResult<T>> {
  const toVersion = options.toVersion ?? null;
  if (toVersion) catalog.require(toVersion);
  let batched = true;
  if (options.expectedVersion !== undefined) {
    const attempt = await migrateUpInOneTrip(pool, target, catalog, {
      ...options,
      expectedVersion: options.expectedVersion,
    });
    if (attempt.kind === 'moved') {
      for (const step of attempt.result.steps) await options.onApplied?.(step);
      return attempt.afterCommit ? { ...attempt.result, afterCommit: attempt.afterCommit } : attempt.result;
    }
    // The same files just failed as one batch: go file by file at once, to name the failing one.
    batched = attempt.kind !== 'failed';
  }
  return run(pool, target, options, 'up', {
    batch: batched,
    // The ledger is ensured and read in the round trip that takes the lock.
    opening: [
      ...(options.prepareDatabase ? [prepareDatabaseSql({ lock: false, revokePublicCreate: true })] : []),
      ensureAndReadLedgerSql(target),
    ].join(';\n'),
    replan: async (client, opening) => {
      const ledger = opening ? ledgerFromResults(opening) : await ensureAndReadLedger(client, target);
      const plan = planUp(catalog, ledger, toVersion);
      assertNoDrift(plan, target.schema);
      return plan;
    },
  });
}

/** Reverts applied files above `options.toVersion`, newest first; refuses before changing anything when one has no down file. */
export async function migrateDown(
  pool: Pool,
  target: MigrationTarget,
  catalog: MigrationCatalog,
  options: MigrateDownOptions,
): Promise<MigrateResult> {
  return run(pool, target, options, 'down', {
    // A ledger of ours still under its former name is renamed under the lock before it is read.
    opening: adoptLegacyLedgerSql(target),
    replan: async (client) => planDown(catalog, await readLedger(client, target), options.toVersion),
  });
}

interface Planner {
  /**
   * Send each transactional group in one round trip (up only); after a batch fails, the round is
   * replayed file by file so the error names the file, line and SQLSTATE.
   */
  readonly batch?: boolean;
  /** Statements sent with the opening of each round's transaction; their results reach `replan`. */
  readonly opening?: string;
  /** Plans from the ledger as it is now (`opening` is null on a session without the opening). */
  replan(client: PoolClient, opening: readonly { rows: unknown[] }[] | null): Promise<Plan>;
}

type Round =
  | { readonly kind: 'done'; readonly fromVersion: string | null; readonly toVersion: string | null }
  | {
      readonly kind: 'applied';
      readonly fromVersion: string | null;
      readonly steps: AppliedStep[];
      /** The group was the whole plan: the target is where it was asked to go. */
      readonly reached: string | null | undefined;
    }
  | { readonly kind: 'alone'; readonly fromVersion: string | null; readonly file: MigrationFile };

async function run(
  pool: Pool,
  target: MigrationTarget,
  options: Omit<MigrateOptions, 'toVersion'>,
  direction: 'up' | 'down',
  planner: Planner,
): Promise<MigrateResult> {
  quoteSchema(target.schema);
  const mode = options.mode ?? TransactionMode.PER_TENANT;
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const steps: AppliedStep[] = [];
  let fromVersion: string | null = null;
  let firstRound = true;
  let batched = planner.batch ?? false;

  for (;;) {
    // Each round re-reads the ledger under the lock: another process may have moved the target.
    const round = await withTargetTransaction(
      pool,
      target,
      lockTimeoutMs,
      async (client, tx): Promise<Round> => {
      const plan = await planner.replan(client, planner.opening ? tx.opening : null);
      const groups = groupSteps(plan, mode);
      const group = groups[0];
      const first = group?.[0];
      if (!group || !first) return { kind: 'done', fromVersion: plan.fromVersion, toVersion: plan.fromVersion };
      if (!isStepTransactional(plan, first)) return { kind: 'alone', fromVersion: plan.fromVersion, file: first };
      let applied: AppliedStep[];
      if (batched) {
        const batch = await applyGroupBatched(client, target, group);
        tx.commitWith(batch.ledgerSql);
        applied = batch.steps;
      } else {
        applied = await applyGroup(client, target, group, direction);
      }
      // Under the lock the plan cannot change, so when this group was all of it no round is left.
      const reached = groups.length === 1 ? plan.toVersion : undefined;
      return { kind: 'applied', fromVersion: plan.fromVersion, steps: applied, reached };
    },
      planner.opening ? { opening: planner.opening } : {},
    ).catch((error: unknown) => {
      if (error instanceof BatchFailedError && batched) {
        batched = false;
        return 'replay' as const;
      }
      if ((error as { code?: unknown }).code === FOREIGN_LEDGER_SQLSTATE) {
        throw new ForeignLedgerError(target.schema, { cause: error });
      }
      throw error;
    });
    if (round === 'replay') continue;
    if (firstRound) fromVersion = round.fromVersion;
    firstRound = false;
    if (round.kind === 'done') return { fromVersion, toVersion: round.toVersion, steps };

    let committed: AppliedStep[];
    if (round.kind === 'applied') {
      committed = round.steps;
    } else {
      committed = await withTargetSession(pool, target, lockTimeoutMs, async (client) => {
        // Re-plan under the session lock: the file may have been run since the transaction above.
        const plan = await planner.replan(client, null);
        const next = plan.steps[0];
        if (!next || next.order !== round.file.order) return [];
        return [await applyFile(client, target, next, direction)];
      });
    }
    for (const step of committed) {
      steps.push(step);
      await options.onApplied?.(step);
    }
    if (round.kind === 'applied' && round.reached !== undefined) {
      return { fromVersion, toVersion: round.reached, steps };
    }
  }
}
