/** Human-readable renderings of migration results for the CLI. */
import type { HistoryEntry, MigrateResult, StampResult, TargetStatusReport } from '../migrations/index.js';

/** One line summarizing an up or down on `label`. */
export function formatMigrateResult(label: string, result: MigrateResult, direction: 'up' | 'down'): string {
  const verb = direction === 'up' ? 'applied' : 'reverted';
  if (result.steps.length === 0) return `${label}: nothing to do, at version ${result.toVersion ?? '(none)'}`;
  return `${label}: ${verb} ${result.steps.length} migration(s), ${result.fromVersion ?? '(none)'} -> ${result.toVersion ?? '(none)'}`;
}

/** The status block: current version, pending files and drift. */
export function formatStatus(label: string, status: TargetStatusReport): string {
  const lines = [
    `${label}`,
    `  current version: ${status.currentVersion ?? '(none)'}`,
    `  applied:         ${status.applied.length}`,
    `  pending:         ${status.pending.length === 0 ? 'none' : status.pending.map((f) => `${f.version}_${f.name}`).join(', ')}`,
  ];
  if (status.drift.length === 0) lines.push('  drift:           none');
  else for (const drift of status.drift) lines.push(`  DRIFT ${drift.kind}: ${drift.message}`);
  return lines.join('\n');
}

/** The ledger as a table, oldest first. */
export function formatHistory(label: string, history: readonly HistoryEntry[]): string {
  if (history.length === 0) return `${label}: no migrations applied`;
  const rows = history.map((entry) => [
    entry.version,
    entry.name,
    entry.appliedAt.toISOString(),
    `${entry.executionMs}`,
    entry.checksumMatches ? 'ok' : 'CHANGED',
  ]);
  return [`${label}`, ...table(['version', 'name', 'applied_at', 'ms', 'checksum'], rows)].join('\n');
}

/** One line summarizing a stamp. */
export function formatStamp(label: string, result: StampResult): string {
  const parts = [
    `${label}: ledger stamped at ${result.toVersion ?? '(none)'} (was ${result.fromVersion ?? '(none)'})`,
  ];
  if (result.inserted.length) parts.push(`recorded ${result.inserted.join(', ')}`);
  if (result.removed.length) parts.push(`removed ${result.removed.join(', ')}`);
  if (result.accepted.length) parts.push(`accepted checksums of ${result.accepted.join(', ')}`);
  return parts.join('; ');
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    `  ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}
