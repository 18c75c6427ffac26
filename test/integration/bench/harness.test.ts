/**
 * The fleet-rollout harness (bench/harness/fleet-rollout.ts) against the real app over HTTP: its
 * tenants are made, rolled back and migrated through the API, its floors run on the same server,
 * its rounds rotate, and it cleans up after itself.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  parseHarnessArgs,
  runFleetRolloutHarness,
  type HarnessOptions,
} from '../../../bench/harness/fleet-rollout.js';
import { withConnection } from '../../../src/db/pg.js';
import { settledSessionCount } from '../../helpers/sessions.js';
import { testServerUrl } from '../../helpers/template.js';
import { BOOTSTRAP_TOKEN, useApiHarness } from '../graphql/harness.js';

const CATALOG = 'bench/fixtures/catalog';

describe('the fleet-rollout harness', () => {
  const api = useApiHarness({ MIGRATIONS_DIR: CATALOG });
  let endpoint = '';

  beforeAll(async () => {
    endpoint = `http://127.0.0.1:${await api.app.listen(0)}/graphql`;
  });

  function options(overrides: Partial<HarnessOptions> = {}): HarnessOptions {
    return {
      endpoint,
      token: BOOTSTRAP_TOKEN,
      floorUrl: testServerUrl(),
      catalogDir: CATALOG,
      tenants: 3,
      rounds: 2,
      connections: 2,
      prefix: `h${randomBytes(4).toString('hex')}`,
      log: () => undefined,
      ...overrides,
    };
  }

  const TENANTS = `query($name: String!) { tenants(first: 50, filter: { nameContains: $name }) {
    totalCount edges { node { schemaVersion migrationHistory { version } } } } }`;

  const scratchDatabases = (prefix: string) =>
    withConnection(testServerUrl(), async (client) => {
      const { rows } = await client.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [
        `${prefix}%`,
      ]);
      return rows.length;
    });

  it('times a migration run of its own tenants through the API against its floors, rounds rotated', async () => {
    // After each floor segment: how many scratch databases exist, and how many floor segments ran.
    const seen: Promise<{ databases: number; floors: number }>[] = [];
    // After each node-pg-migrate segment: the sessions its scratch database has had.
    const npmSessions: number[] = [];
    let floors = 0;
    const input = options({
      keepTenants: true,
      floorIn: 'scratch',
      log: (line) => {
        if (!/ (floor|npm): /.test(line)) return;
        const ran = ++floors;
        seen.push(scratchDatabases(input.prefix).then((databases) => ({ databases, floors: ran })));
      },
      // Awaited before the next segment, and before the scratch databases go after the last round.
      onSegmentEnd: async (segment, round) => {
        if (segment !== 'npm') return;
        npmSessions.push(
          await withConnection(testServerUrl(), (client) =>
            settledSessionCount(client, `${input.prefix}_npm_${round}`),
          ),
        );
      },
    });
    const report = await runFleetRolloutHarness(input);
    // One session made its schemas; node-pg-migrate's runners kept one connection each
    // (`connections`: 2) for its 3 tenants, as the floor's do.
    expect(npmSessions).toEqual([3, 3]);
    // Scratch databases are dropped once every round is done, not between segments.
    for (const { databases, floors: ran } of await Promise.all(seen))
      expect(databases).toBeGreaterThanOrEqual(ran);
    expect(floors).toBe(4);

    expect(report.rounds.map((r) => r.order)).toEqual([
      ['cp', 'floor', 'npm'],
      ['floor', 'npm', 'cp'],
    ]);
    for (const round of report.rounds) {
      for (const rate of Object.values(round.rates)) expect(rate).toBeGreaterThan(0);
      expect(round.toFloor).toBeCloseTo(round.rates.cp / round.rates.floor, 10);
      expect(round.toPeer).toBeCloseTo(round.rates.cp / round.rates.npm, 10);
    }
    expect(report.summary.cp.min).toBe(Math.min(...report.rounds.map((r) => r.rates.cp)));
    // Every tenant it made ends at the catalog's latest version with the whole ledger.
    const { data } = await api.gql(TENANTS, { name: input.prefix });
    expect(data?.tenants.totalCount).toBe(3);
    for (const { node } of data?.tenants.edges ?? []) {
      expect(node.schemaVersion).toBe('0005');
      expect(node.migrationHistory.map((m: { version: string }) => m.version)).toEqual([
        '0001',
        '0002',
        '0003',
        '0004',
        '0005',
      ]);
    }
    const schemas = await withConnection(api.database.url, (client) =>
      client.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`tenant_${input.prefix}%`]),
    );
    expect(schemas.rows).toHaveLength(3);
    // Its floors ran in scratch databases: none in the tenants' database.
    const floorSchemas = await withConnection(api.database.url, (client) =>
      client.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 OR nspname LIKE $2`, [
        `${input.prefix}_floor_%`,
        `${input.prefix}_npm_%`,
      ]),
    );
    expect(floorSchemas.rows).toEqual([]);
    expect(await scratchDatabases(input.prefix)).toBe(0);
  });

  it("by default runs its floors over the tenants' own schemas, and leaves them as the control plane knows them", async () => {
    const seen: string[] = [];
    const input = options({
      keepTenants: true,
      onSegmentEnd: async (segment, round) => {
        if (segment === 'cp') return;
        // Right after a floor: every tenant's schema is at the catalog's end, its ledger empty
        // (the control plane rolled it back to 0 before), no history table of node-pg-migrate's.
        const tenants = await withConnection(api.database.url, async (client) => {
          const { rows } = await client.query<{ nspname: string; tables: string[]; columns: string[] }>(
            `SELECT n.nspname,
                    ARRAY(SELECT relname::text FROM pg_class WHERE relnamespace = n.oid AND relkind = 'r' ORDER BY 1) AS tables,
                    ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass(quote_ident(n.nspname) || '.tasks')
                           AND attnum > 0 AND NOT attisdropped ORDER BY attnum) AS columns
               FROM pg_namespace n WHERE n.nspname LIKE $1 ORDER BY 1`,
            [`tenant_${input.prefix}%`],
          );
          const ledgers: (number | null)[] = [];
          for (const row of rows) {
            const ledger = await client.query(
              `SELECT version FROM ${client.escapeIdentifier(row.nspname)}.control_plane_ledger`,
            );
            ledgers.push(ledger.rowCount);
          }
          return rows.map((row, i) => ({ ...row, ledgerRows: ledgers[i] }));
        });
        expect(tenants).toHaveLength(3);
        for (const tenant of tenants) {
          expect(tenant.tables).toEqual(['accounts', 'control_plane_ledger', 'events', 'projects', 'tasks']);
          expect(tenant.columns).toContain('summary');
          expect(tenant.ledgerRows).toBe(0);
        }
        if (segment === 'npm') {
          // node-pg-migrate kept its history per tenant in a schema of the segment's own.
          const history = await withConnection(api.database.url, (client) =>
            client.query<{ relname: string }>(
              `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1`,
              [`${input.prefix}_npm_${round}`],
            ),
          );
          expect(history.rows.map((r) => r.relname)).toEqual(['t_1', 't_2', 't_3']);
        }
        seen.push(`${segment} ${round}`);
      },
    });
    const report = await runFleetRolloutHarness(input);
    expect(seen).toEqual(['floor 1', 'npm 1', 'floor 2', 'npm 2']);
    expect(report.rounds.map((r) => r.order)).toEqual([
      ['cp', 'floor', 'npm'],
      ['floor', 'npm', 'cp'],
    ]);
    for (const round of report.rounds)
      for (const rate of Object.values(round.rates)) expect(rate).toBeGreaterThan(0);
    // The control plane's last run took them to 0005 and read their structure: what the catalog
    // makes, so the floors' reverts left nothing behind (a leftover would read as drift, and a
    // drifted tenant is refused by the next run).
    const { data } = await api.gql(
      `query($name: String!) { tenants(first: 50, filter: { nameContains: $name }) { totalCount
        edges { node { schemaVersion migrationHistory { version } databases { fingerprint { matchesExpected } } } } } }`,
      { name: input.prefix },
    );
    expect(data?.tenants.totalCount).toBe(3);
    for (const { node } of data?.tenants.edges ?? []) {
      expect(node.schemaVersion).toBe('0005');
      expect(node.migrationHistory).toHaveLength(5);
      expect(node.databases[0].fingerprint.matchesExpected).toBe(true);
    }
    // node-pg-migrate's history schemas are gone, no scratch database was made.
    const leftovers = await withConnection(api.database.url, (client) =>
      client.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`${input.prefix}_%`]),
    );
    expect(leftovers.rows).toEqual([]);
    expect(await scratchDatabases(input.prefix)).toBe(0);
  });

  it("refuses a catalog without down files for floors over the tenants' schemas, before it creates any tenant", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'harness-catalog-'));
    await writeFile(join(dir, '0001_a.up.sql'), 'CREATE TABLE a (id int);');
    try {
      const input = options({ catalogDir: dir, tenants: 1, rounds: 1 });
      await expect(runFleetRolloutHarness(input)).rejects.toThrow(
        /lacks 0001_a\.down\.sql; use --floor-in scratch or tenants/,
      );
      const { data } = await api.gql(TENANTS, { name: input.prefix });
      expect(data?.tenants.totalCount).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('deletes its tenants, schemas included, unless told to keep them; floors in the tenants database leave nothing', async () => {
    const lines: string[] = [];
    const input = options({
      rounds: 1,
      tenants: 2,
      floorIn: 'tenants',
      quietSeconds: 1,
      log: (l) => lines.push(l),
    });
    const report = await runFleetRolloutHarness(input);
    expect(report.rounds[0]?.rates.floor).toBeGreaterThan(0);
    // With quietSeconds, every timed segment is preceded by its wait.
    expect(lines.filter((l) => !l.startsWith('creating'))).toEqual([
      'waiting 1 s before the timed segment',
      expect.stringMatching(/^round 1\/1 cp: /),
      'waiting 1 s before the timed segment',
      expect.stringMatching(/^round 1\/1 floor: /),
      'waiting 1 s before the timed segment',
      expect.stringMatching(/^round 1\/1 npm: /),
    ]);
    const { data } = await api.gql(TENANTS, { name: input.prefix });
    expect(data?.tenants.totalCount).toBe(0);
    const schemas = await withConnection(api.database.url, (client) =>
      client.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`tenant_${input.prefix}%`]),
    );
    expect(schemas.rows).toEqual([]);
    const floorSchemas = await withConnection(api.database.url, (client) =>
      client.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`${input.prefix}_%`]),
    );
    expect(floorSchemas.rows).toEqual([]);
    expect(await scratchDatabases(input.prefix)).toBe(0);
  });

  it('refuses a catalog directory without up files before it creates any tenant', async () => {
    const input = options({ catalogDir: 'test', tenants: 1, rounds: 1 });
    await expect(runFleetRolloutHarness(input)).rejects.toThrow(/no \*\.up\.sql files in test/);
    const { data } = await api.gql(TENANTS, { name: input.prefix });
    expect(data?.tenants.totalCount).toBe(0);
  });

  it("with vacuum, vacuums the tenants' database before each timed segment (as autovacuum would)", async () => {
    // How many times the tenants' database's pg_class was vacuumed (statistics flush when the
    // vacuuming connection closes, which the harness's does right after).
    const vacuums = () =>
      withConnection(api.database.url, async (client) => {
        const { rows } = await client.query<{ n: string }>(
          `SELECT vacuum_count AS n FROM pg_stat_all_tables WHERE relid = 'pg_catalog.pg_class'::regclass`,
        );
        return Number(rows[0]?.n ?? 0);
      });
    const before = await vacuums();
    const seen: number[] = [];
    const report = await runFleetRolloutHarness(
      options({ rounds: 1, vacuum: true, onSegmentEnd: async () => void seen.push(await vacuums()) }),
    );
    expect(report.rounds).toHaveLength(1);
    // One VACUUM before each of the three segments: the floors' database is the tenants' own.
    expect(seen).toHaveLength(3);
    expect(seen[0]).toBeGreaterThanOrEqual(before + 1);
    expect(seen[2]).toBeGreaterThanOrEqual(before + 3);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
  });

  it('parses its command line, and refuses what it does not know', () => {
    const { options: parsed } = parseHarnessArgs(['--tenants', '20', '--keep-tenants'], {
      HARNESS_TOKEN: 't0k',
    });
    expect(parsed).toMatchObject({ tenants: 20, rounds: 3, connections: 4, keepTenants: true, token: 't0k' });
    expect(() => parseHarnessArgs(['--tenants', '0'], {})).toThrow(/--tenants must be a positive integer/);
    expect(() => parseHarnessArgs(['--tenant', '5'], {})).toThrow(/unknown option --tenant/);
    expect(() => parseHarnessArgs(['--prefix', 'Bad Name'], {})).toThrow(/--prefix must match/);
    expect(parseHarnessArgs([], {}).options.floorIn).toBe('same');
    expect(parseHarnessArgs(['--floor-in', 'scratch'], {}).options.floorIn).toBe('scratch');
    expect(parseHarnessArgs([], {}).options.quietSeconds).toBe(0);
    expect(parseHarnessArgs([], {}).options.vacuum).toBe(false);
    expect(parseHarnessArgs(['--vacuum', '--tenants', '5'], {}).options).toMatchObject({
      vacuum: true,
      tenants: 5,
    });
    expect(parseHarnessArgs(['--quiet-seconds', '90'], {}).options.quietSeconds).toBe(90);
    expect(() => parseHarnessArgs(['--quiet-seconds', '-1'], {})).toThrow(/--quiet-seconds must be/);
    expect(() => parseHarnessArgs(['--floor-in', 'elsewhere'], {})).toThrow(
      /--floor-in must be same, tenants, scratch/,
    );
  });
});
