import { describe, expect, it } from 'vitest';
import { waitForRunEnd } from '../runs/run-assertions.js';
import { useApiHarness } from './harness.js';

const RUN_FIELDS = `id kind status targetVersion dryRun concurrency maxFailures canarySize transactionMode
  requestedBy createdAt updatedAt startedAt finishedAt
  progress { total pending running succeeded failed skipped cancelled }`;

describe('the migrationRun query', () => {
  const api = useApiHarness();

  async function provisioningRun(base: string): Promise<{ id: string; runId: string }> {
    const created = await api.gql(
      `mutation ($name: String!) { createTenant(input: { name: $name }) {
        ... on CreateTenantSuccess { provisioning { id } } } }`,
      { name: api.tenantName(base) },
    );
    const id = created.data?.createTenant.provisioning.id as string;
    const runId = Buffer.from(id, 'base64').toString('utf8').split(':')[1] as string;
    return { id, runId };
  }

  it('answers a selection of columns as the stored row says', async () => {
    const { id, runId } = await provisioningRun('runq-columns');
    const row = await waitForRunEnd(api.app.db, runId);
    const result = await api.gql(`query ($id: ID!) { migrationRun(id: $id) { ${RUN_FIELDS} } }`, { id });
    expect(result.errors).toBeUndefined();
    const iso = (date: Date | null) => date?.toISOString() ?? null;
    expect(result.data?.migrationRun).toEqual({
      id,
      kind: row.kind,
      status: row.status,
      targetVersion: row.targetVersion,
      dryRun: row.dryRun,
      concurrency: row.concurrency,
      maxFailures: row.maxFailures,
      canarySize: row.canarySize,
      transactionMode: row.transactionMode,
      requestedBy: row.requestedBy,
      createdAt: iso(row.createdAt),
      updatedAt: iso(row.updatedAt),
      startedAt: iso(row.startedAt),
      finishedAt: iso(row.finishedAt),
      progress: { total: 1, pending: 0, running: 0, succeeded: 1, failed: 0, skipped: 0, cancelled: 0 },
    });
  });

  it('loads the targets of a run when asked for them', async () => {
    const { id } = await provisioningRun('runq-targets');
    const result = await api.gql(
      `query ($id: ID!) { migrationRun(id: $id) { kind targets { totalCount edges { node { canary tenant { name } } } } } }`,
      { id },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.migrationRun).toEqual({
      kind: 'PROVISION',
      targets: {
        totalCount: 1,
        edges: [{ node: { canary: false, tenant: { name: api.tenantName('runq-targets') } } }],
      },
    });
  });

  it('answers null for an unknown or malformed id', async () => {
    const unknown = Buffer.from('MigrationRun:00000000-0000-4000-8000-000000000000').toString('base64');
    for (const id of [unknown, 'not-an-id']) {
      const result = await api.gql(`query ($id: ID!) { migrationRun(id: $id) { id status } }`, { id });
      expect(result.errors).toBeUndefined();
      expect(result.data?.migrationRun).toBeNull();
    }
  });
});
