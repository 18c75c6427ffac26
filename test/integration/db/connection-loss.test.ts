import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withConnection } from '../../../src/db/pg.js';
import { expectEventually } from '../../helpers/eventually.js';
import { testServerUrl } from '../../helpers/template.js';
import { useApiHarness } from '../graphql/harness.js';

const CREATE = `mutation ($name: String!) { createTenant(input: { name: $name }) {
  __typename ... on CreateTenantSuccess { provisioning { id } } ... on Error { code message } } }`;
const RUN = `query ($id: ID!) { migrationRun(id: $id) { id status } }`;

describe('losing every PostgreSQL connection (a restart, a failover, a proxy idle timeout)', () => {
  const api = useApiHarness();
  // An 'error' event nobody listens to is thrown as an uncaught exception: it would kill `npm start`.
  const uncaught: unknown[] = [];
  const record = (error: unknown) => void uncaught.push(error);
  beforeAll(() => void process.prependListener('uncaughtException', record));
  afterAll(() => void process.removeListener('uncaughtException', record));

  async function provision(name: string): Promise<void> {
    const created = await api.gql(CREATE, { name });
    expect(created.data?.createTenant.__typename, JSON.stringify(created)).toBe('CreateTenantSuccess');
    const id = created.data?.createTenant.provisioning.id as string;
    await expectEventually(
      async () => {
        const run = await api.gql(RUN, { id });
        expect(run.data?.migrationRun.status).toBe('SUCCEEDED');
      },
      { timeoutMs: 20_000 },
    );
  }

  /** Terminates every session on the test database but this one: what a server restart does to us. */
  async function terminateAll(): Promise<number> {
    return withConnection(testServerUrl(), async (client) => {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n
           FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [api.database.name],
      );
      return rows[0]?.n ?? 0;
    });
  }

  it('keeps the process alive, logs the loss, and serves requests and runs afterwards', async () => {
    // Every kind of pool has connections open: Prisma, the API's and the worker's plain pools, tenant pools.
    await provision(api.tenantName('before'));
    const count = async () => {
      const tenants = await api.gql(`{ tenants(first: 5) { totalCount } }`);
      expect(tenants.errors).toBeUndefined();
      return tenants.data?.tenants.totalCount as number;
    };
    const before = await count();
    const terminated = await terminateAll();
    expect(terminated).toBeGreaterThan(2);

    const lost = () => api.logLines.filter((line) => line.includes('PostgreSQL connection lost'));
    // The pools notice the loss (a log line) or, unhandled, it escapes as an uncaught exception.
    await expectEventually(() => expect(lost().length + uncaught.length).toBeGreaterThan(0));
    expect(uncaught).toEqual([]);
    expect(lost()[0]).toContain('57P01');
    await expectEventually(async () => expect(await count()).toBe(before));
    await provision(api.tenantName('after'));
    // Twice in a row: pools whose connections were replaced survive losing those too.
    expect(await terminateAll()).toBeGreaterThan(0);
    await provision(api.tenantName('again'));
    expect(uncaught).toEqual([]);
  });
});
