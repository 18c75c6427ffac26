/**
 * adoptTenants(dryRun: true) over GraphQL: the run's targets report per schema what adoption
 * would do, each with the tenant it would register, which is not stored anywhere.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tryDecodeId } from '../../../src/graphql/ids.js';
import { useApiHarness } from '../graphql/harness.js';
import { waitForRunEnd } from '../runs/run-assertions.js';

const FINGERPRINT = path.resolve(import.meta.dirname, '../../fixtures/runs/fingerprint');

const ADOPT = `mutation ($input: AdoptTenantsInput!) {
  adoptTenants(input: $input) {
    __typename
    ... on AdoptTenantsSuccess { run { id kind dryRun } }
    ... on Error { message }
  }
}`;
const TARGETS = `query ($id: ID!) {
  migrationRun(id: $id) {
    status
    targets(first: 10) {
      edges { node { status schemaName plannedSql error toVersion
        tenant { id name status environment databases { id } schemaVersion } } }
    }
  }
}`;

describe('adoptTenants over GraphQL', () => {
  const api = useApiHarness({ MIGRATIONS_DIR: FINGERPRINT });

  it('shows a dry run per schema, with the tenant each would register and nothing stored', async () => {
    const [first, second] = api.app.catalog.files;
    await api.database.pool.query(`
      CREATE SCHEMA gqldry_a; SET search_path TO gqldry_a; ${first!.upSql}; ${second!.upSql};
      CREATE SCHEMA gqldry_b; SET search_path TO gqldry_b; ${first!.upSql}; CREATE TABLE legacy_notes (body text);
      RESET search_path`);
    const before = await api.app.db.tenant.count();
    const adopted = await api.gql(ADOPT, {
      input: {
        schemaPattern: 'gqldry_%',
        namePrefix: 'gqldry_',
        historySource: 'FINGERPRINT',
        environment: 'STAGING',
        dryRun: true,
      },
    });
    expect(adopted.errors).toBeUndefined();
    const run = adopted.data!.adoptTenants.run as { id: string; kind: string; dryRun: boolean };
    expect(run).toMatchObject({ kind: 'ADOPT', dryRun: true });
    const runId = tryDecodeId(run.id, 'MigrationRun')!;
    await waitForRunEnd(api.app.db, runId);

    const read = await api.gql(TARGETS, { id: run.id });
    expect(read.errors).toBeUndefined();
    const nodes = read.data!.migrationRun.targets.edges.map((e: { node: unknown }) => e.node);
    expect(read.data!.migrationRun.status).toBe('FAILED');
    expect(nodes).toEqual([
      {
        status: 'SUCCEEDED',
        schemaName: 'gqldry_a',
        plannedSql: '-- would stamp gqldry_a at 0002 (FINGERPRINT: structure equals 0002)',
        error: null,
        toVersion: '0002',
        tenant: {
          id: expect.any(String),
          name: 'a',
          status: 'PENDING',
          environment: 'STAGING',
          databases: [],
          schemaVersion: null,
        },
      },
      {
        status: 'FAILED',
        schemaName: 'gqldry_b',
        plannedSql: null,
        error:
          'adoption refused (FINGERPRINT): no catalog version has this structure; nearest is 0001: TABLE_EXTRA legacy_notes',
        toVersion: null,
        tenant: expect.objectContaining({ name: 'b', status: 'PENDING', databases: [] }),
      },
    ]);
    // The tenant it would register is not stored: its id resolves to nothing.
    const node = await api.gql(`query ($id: ID!) { node(id: $id) { id } }`, { id: nodes[0].tenant.id });
    expect(node.data?.node).toBeNull();
    expect(await api.app.db.tenant.count()).toBe(before);
  });
});
