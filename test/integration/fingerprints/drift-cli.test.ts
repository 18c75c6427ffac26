import { describe, expect, it } from 'vitest';
import { adoptCommand, driftCommand } from '../../../src/cli/drift-command.js';
import { RunNotSucceededError } from '../../../src/cli/tenants-up.js';
import { UsageError } from '../../../src/cli/usage-error.js';
import { NotFoundError } from '../../../src/errors.js';
import { useRunHarness } from '../runs/run-harness.js';

describe('drift and adopt (CLI)', () => {
  const h = useRunHarness('fingerprint');

  it('adopts schemas by fingerprint and prints the clusters with the outlier', async () => {
    const [first, second] = h.catalog.files;
    await h.database.pool.query(`
      CREATE SCHEMA old_a; SET search_path TO old_a; ${first!.upSql}; ${second!.upSql};
      CREATE SCHEMA old_b; SET search_path TO old_b; ${first!.upSql};
      CREATE SCHEMA old_c; SET search_path TO old_c; ${first!.upSql}; CREATE TABLE legacy_notes (body text);
      RESET search_path`);
    const lines: string[] = [];
    const io = { out: (line: string) => void lines.push(line) };
    await expect(adoptCommand(h.config, { source: 'ALEMBIC' }, io)).rejects.toBeInstanceOf(UsageError);
    // --server reaches adoptTenants: an unknown server is refused and nothing is registered.
    const tenantsBefore = await h.db.tenant.count();
    await expect(
      adoptCommand(h.config, { pattern: 'old_%', server: 'nowhere', 'with-worker': true }, io),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await h.db.tenant.count()).toBe(tenantsBefore);
    await expect(
      adoptCommand(
        h.config,
        { pattern: 'old_%', source: 'fingerprint', 'name-prefix': 'old_', 'with-worker': true },
        io,
      ),
    ).rejects.toBeInstanceOf(RunNotSucceededError);
    expect(lines.slice(1).sort()).toEqual([
      '  -- stamped old_a at 0002 (FINGERPRINT: structure equals 0002)',
      '  -- stamped old_b at 0001 (FINGERPRINT: structure equals 0001)',
      '  FAILED old_c: adoption refused (FINGERPRINT): no catalog version has this structure; nearest is 0001: TABLE_EXTRA legacy_notes',
    ]);

    lines.length = 0;
    await driftCommand(h.config, {}, io);
    expect(lines.map((line) => line.replace(/[0-9a-f]{12}/, 'HASH'))).toEqual([
      '0001   expected      1  HASH  b',
      '0002   expected      1  HASH  a',
      '-      OUTLIER       1  HASH  c',
    ]);
  });
});
