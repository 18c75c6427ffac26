/**
 * Re-encrypting every stored tenant connection string under the current key, in the current
 * (row-bound) envelope: what makes a previous key removable.
 *
 * Safe to interrupt: rows are read in id order in batches, and each batch is one guarded UPDATE
 * that commits on its own, so a process killed at any moment leaves every row either as it was
 * or resealed, and both open with the current key plus the previous ones. Idempotent: rows that are
 * already current are skipped, so running it again continues where it stopped. A row that changed
 * since it was read (WHERE ciphertext = the one read) is left alone and counted, never overwritten.
 */
import type { SecretBox } from './secret-box.js';
import { SecretDecryptionError } from './secret-box.js';

/** The tables whose rows hold a connection string sealed bound to the row (column `connection_string_encrypted`). */
export const SEALED_TABLES = ['tenant_databases', 'database_servers'] as const;
export type SealedTable = (typeof SEALED_TABLES)[number];

/** Rows per read and per UPDATE. */
export const RESEAL_BATCH_SIZE = 500;

/** What runs the statements: a pg Pool or Client of the control-plane database. */
export interface ResealQueryable {
  query<Row extends object>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Row[]; rowCount: number | null }>;
}

export interface ResealProgress {
  readonly total: number;
  readonly checked: number;
  readonly resealed: number;
  readonly alreadyCurrent: number;
  /** Rows that changed between the read and the guarded UPDATE; left as they are. */
  readonly changedMeanwhile: number;
  readonly failed: readonly ResealFailure[];
}

/** A row whose connection string could not be opened: its id and the reason, never the secret. */
export interface ResealFailure {
  readonly tenantDatabaseId: string;
  readonly message: string;
}

export interface ResealSummary extends ResealProgress {
  /** True when `signal` stopped it between batches: run it again to continue. */
  readonly interrupted: boolean;
}

export interface ResealOptions {
  readonly batchSize?: number;
  /** Checked between batches; a batch in flight always completes. */
  readonly signal?: AbortSignal;
  /** Called after each batch has committed. */
  readonly onProgress?: (progress: ResealProgress) => void;
  /** Which table's rows; default `tenant_databases`. */
  readonly table?: SealedTable;
}

/** Reseals every connection string of `options.table` (`tenant_databases`) that is not current. */
export async function resealConnectionStrings(
  db: ResealQueryable,
  secretBox: SecretBox,
  options: ResealOptions = {},
): Promise<ResealSummary> {
  const batchSize = options.batchSize ?? RESEAL_BATCH_SIZE;
  const table = tableOf(options.table);
  const { rows: counted } = await db.query<{ total: number }>(
    `SELECT count(*)::int AS total FROM control_plane.${table}`,
  );
  let progress: ResealProgress = {
    total: counted[0]?.total ?? 0,
    checked: 0,
    resealed: 0,
    alreadyCurrent: 0,
    changedMeanwhile: 0,
    failed: [],
  };
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    if (options.signal?.aborted) return { ...progress, interrupted: true };
    const { rows } = await db.query<{ id: string; sealed: string }>(
      `SELECT id::text AS id, connection_string_encrypted AS sealed
         FROM control_plane.${table}
        WHERE id > $1::uuid
        ORDER BY id
        LIMIT $2`,
      [after, batchSize],
    );
    if (rows.length === 0) return { ...progress, interrupted: false };
    after = rows[rows.length - 1]!.id;

    const replacements: SealedReplacement[] = [];
    const failed: ResealFailure[] = [];
    let alreadyCurrent = 0;
    for (const row of rows) {
      if (secretBox.isCurrent(row.sealed)) {
        alreadyCurrent += 1;
        continue;
      }
      try {
        const plaintext = secretBox.openConnectionString({
          id: row.id,
          connectionStringEncrypted: row.sealed,
        });
        replacements.push({
          id: row.id,
          from: row.sealed,
          to: secretBox.sealConnectionString(row.id, plaintext),
        });
      } catch (error) {
        if (!(error instanceof SecretDecryptionError)) throw error;
        failed.push({ tenantDatabaseId: row.id, message: error.message });
      }
    }
    const replaced = await replaceSealedConnectionStrings(db, replacements, table);
    progress = {
      total: progress.total,
      checked: progress.checked + rows.length,
      resealed: progress.resealed + replaced.length,
      alreadyCurrent: progress.alreadyCurrent + alreadyCurrent,
      changedMeanwhile: progress.changedMeanwhile + replacements.length - replaced.length,
      failed: [...progress.failed, ...failed],
    };
    options.onProgress?.(progress);
  }
}

/** One row's new ciphertext, and the one it must still hold to be replaced. */
export interface SealedReplacement {
  readonly id: string;
  readonly from: string;
  readonly to: string;
}

/**
 * Writes the new ciphertexts in one statement, each only where the row still holds `from`;
 * returns the ids it changed. A row rewritten meanwhile (another reseal, a re-registration) keeps
 * what it has.
 */
export async function replaceSealedConnectionStrings(
  db: ResealQueryable,
  replacements: readonly SealedReplacement[],
  table: SealedTable = 'tenant_databases',
): Promise<string[]> {
  if (replacements.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(
    `UPDATE control_plane.${tableOf(table)} AS d
        SET connection_string_encrypted = r.sealed_to
       FROM unnest($1::uuid[], $2::text[], $3::text[]) AS r(id, sealed_from, sealed_to)
      WHERE d.id = r.id AND d.connection_string_encrypted = r.sealed_from
      RETURNING d.id::text AS id`,
    [replacements.map((r) => r.id), replacements.map((r) => r.from), replacements.map((r) => r.to)],
  );
  return rows.map((row) => row.id);
}

// Interpolated into SQL: only the known names pass.
function tableOf(table: SealedTable = 'tenant_databases'): SealedTable {
  if (!SEALED_TABLES.includes(table)) throw new Error(`not a sealed table: ${String(table)}`);
  return table;
}
