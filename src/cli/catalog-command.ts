/**
 * `catalog publish [--dir <dir>]` and `catalog list`: publish a catalog directory as a release
 * before deploying (idempotent), and list the releases the control plane holds.
 */
import { snapshotCatalog } from '../catalog-releases/release-snapshot.js';
import { publishRelease } from '../catalog-releases/release-store.js';
import type { Config } from '../config.js';
import { createPgPool } from '../db/pg.js';
import { loadCatalog } from '../migrations/index.js';
import { UsageError } from './usage-error.js';

/** What the `catalog` group reads of the command line. */
export interface CatalogCommandInput {
  readonly action: string | undefined;
  readonly dir?: string | undefined;
}

/** The `catalog` command group. */
export async function catalogCommand(
  config: Pick<Config, 'databaseUrl' | 'migrationsDir'>,
  input: CatalogCommandInput,
  io: { readonly out: (line: string) => void },
): Promise<void> {
  if (input.action !== 'publish' && input.action !== 'list') {
    throw new UsageError(`unknown action "catalog ${input.action ?? ''}": use publish or list`);
  }
  // Loaded and validated (every problem at once) before the control plane is touched.
  const catalog = input.action === 'publish' ? await loadCatalog(input.dir ?? config.migrationsDir) : null;
  const pool = createPgPool({
    connectionString: config.databaseUrl,
    max: 2,
    applicationName: 'tenant-control-plane-cli',
  });
  try {
    if (catalog) {
      for (const warning of catalog.warnings) io.out(`warning: ${warning.message}`);
      const release = await publishRelease(pool, snapshotCatalog(catalog));
      io.out(
        `${release.created ? 'published' : 'already published'} release ${release.checksum} ` +
          `(${catalog.files.length} migrations, latest ${catalog.latest ?? 'none'}) from ${catalog.dir}`,
      );
      return;
    }
    const releases = await pool.query<{
      checksum: string;
      latest_version: string | null;
      file_count: number;
      created_at: Date;
    }>(
      `SELECT checksum, latest_version, file_count, created_at FROM control_plane.catalog_releases
        ORDER BY created_at DESC, id DESC`,
    );
    if (releases.rows.length === 0) io.out('no catalog releases published yet');
    for (const row of releases.rows) {
      io.out(
        `${row.checksum}  latest ${row.latest_version ?? 'none'}  ${row.file_count} files  ${row.created_at.toISOString()}`,
      );
    }
  } finally {
    await pool.end();
  }
}
