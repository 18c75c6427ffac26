import { beforeAll, describe, expect, it } from 'vitest';
import { useApiHarness } from './harness.js';

const NAMES = `query ($first: Int, $after: String, $filter: TenantFilter) {
  tenants(first: $first, after: $after, filter: $filter) { edges { node { name } } } }`;

const RANDOM_UUID = '6f1c7c52-1d3f-4a61-9a53-8f0a5f2f4c11';

/** A Pothos Prisma cursor around `value`, as a client could forge one. */
function cursorOf(value: string): string {
  return Buffer.from(`GPC:S:${value}`).toString('base64');
}

describe('connection and filter arguments', () => {
  const api = useApiHarness();
  let runId = '';

  beforeAll(async () => {
    // Rows only: these tenants are never provisioned, the filter reads the control-plane DB.
    for (const name of ['lit_one', 'litxone', 'lit-two', 'pct%one']) {
      await api.app.db.tenant.create({ data: { name, status: 'ACTIVE' } });
    }
    const run = await api.app.db.migrationRun.create({
      data: { kind: 'MIGRATE', status: 'SUCCEEDED', concurrency: 1 },
    });
    runId = Buffer.from(`MigrationRun:${run.id}`).toString('base64');
  });

  async function names(variables: Record<string, unknown>): Promise<string[]> {
    const result = await api.gql(NAMES, variables);
    expect(result.errors).toBeUndefined();
    return (result.data?.tenants.edges as { node: { name: string } }[]).map((edge) => edge.node.name);
  }

  it('matches % and _ in nameContains literally', async () => {
    expect(await names({ filter: { nameContains: '%' } })).toEqual(['pct%one']);
    expect(await names({ filter: { nameContains: 'lit_' } })).toEqual(['lit_one']);
    expect(await names({ filter: { nameContains: '_o' } })).toEqual(['lit_one']);
    expect(await names({ filter: { nameContains: '\\' } })).toEqual([]);
    expect(await names({ filter: { nameContains: 'LIT' } })).toEqual(['lit-two', 'lit_one', 'litxone']);
  });

  it.each([
    ['a cursor around a non-UUID', cursorOf('not-a-uuid')],
    ['a cursor that is not base64 of a cursor', 'garbage!'],
    ['a cursor of another shape', Buffer.from('GPC:N:12').toString('base64')],
  ])('refuses %s with a validation error naming the argument', async (_label, after) => {
    const result = await api.gql(NAMES, { first: 2, after });
    expect(result.data ?? null).toBeNull();
    expect(result.errors?.[0]?.extensions?.code).toBe('VALIDATION');
    expect(result.errors?.[0]?.message).toMatch(/"after"/);
  });

  it('refuses first above the maximum, naming it, and a negative first', async () => {
    const over = await api.gql(NAMES, { first: 101 });
    expect(over.errors?.[0]?.extensions?.code).toBe('VALIDATION');
    expect(over.errors?.[0]?.message).toContain('100');
    const negative = await api.gql(NAMES, { first: -1 });
    expect(negative.errors?.[0]?.extensions?.code).toBe('VALIDATION');
    expect(negative.errors?.[0]?.message).toMatch(/"first"/);
    const both = await api.gql(
      `query ($cursor: String) { tenants(first: 1, before: $cursor) { edges { node { name } } } }`,
      { cursor: cursorOf(RANDOM_UUID) },
    );
    expect(both.errors?.[0]?.extensions?.code).toBe('VALIDATION');
    expect(await names({ first: 100 })).toEqual(expect.arrayContaining(['lit_one', 'pct%one']));
  });

  it('checks the runs connection and a run targets connection the same way', async () => {
    const runs = await api.gql(`query ($after: String) { migrationRuns(after: $after) { totalCount } }`, {
      after: cursorOf('1234'),
    });
    expect(runs.errors?.[0]?.extensions?.code).toBe('VALIDATION');
    const targets = await api.gql(
      `query ($id: ID!, $first: Int) { migrationRun(id: $id) { targets(first: $first) { totalCount } } }`,
      { id: runId, first: 501 },
    );
    expect(targets.errors?.[0]?.extensions?.code).toBe('VALIDATION');
    expect(targets.errors?.[0]?.message).toContain('500');
  });
});
