import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createGraphqlYoga, type GraphqlYoga } from '../../../src/graphql/server.js';
import { createLogger } from '../../../src/logger.js';
import { LEDGER_TABLE } from '../../../src/migrations/index.js';
import { expectEventually } from '../../helpers/eventually.js';
import { BOOTSTRAP_TOKEN, useApiHarness, type GraphqlResponse } from './harness.js';

// A console-sized page: what an operator's tenant list shows.
const CONSOLE_PAGE = `query ($first: Int) {
  tenants(first: $first) {
    totalCount
    edges { node { name status schemaVersion pendingMigrations { version name } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const TENANT_DATABASE_FIELDS = `pendingMigrations { version } migrationHistory { version }`;

/** `count` aliases of `tenants(first)`, each reading every listed tenant's own database. */
function aliasedTenantReads(count: number, first: number): string {
  const fields = Array.from(
    { length: count },
    (_, i) => `a${i}: tenants(first: ${first}) { edges { node { ${TENANT_DATABASE_FIELDS} } } }`,
  );
  return `{ ${fields.join('\n')} }`;
}

// The read timeout is short here so a blocked tenant read fails quickly.
const READ_TIMEOUT_MS = 300;

describe('query limits', () => {
  const api = useApiHarness({ TENANT_READ_TIMEOUT_MS: String(READ_TIMEOUT_MS) });
  // Calls into the tenant databases (ledger reads) made by the counting yoga below.
  let tenantReads = 0;
  let yoga: GraphqlYoga;
  const schemas: string[] = [];
  const names: string[] = [];

  beforeAll(async () => {
    const create = `mutation ($name: String!) { createTenant(input: { name: $name }) {
      ... on CreateTenantSuccess { tenant { id databases { schemaName } } } } }`;
    for (const key of ['lim-a', 'lim-b', 'lim-c']) {
      names.push(api.tenantName(key));
      const result = await api.gql(create, { name: names.at(-1) });
      const tenant = result.data?.createTenant.tenant as { databases: { schemaName: string }[] };
      schemas.push(tenant.databases[0]!.schemaName);
    }
    await expectEventually(
      async () => {
        const active = await api.app.db.tenant.count({ where: { status: 'ACTIVE', name: { in: names } } });
        expect(active).toBe(schemas.length);
      },
      { timeoutMs: 45_000, intervalMs: 200 },
    );
    const services = api.app.services;
    yoga = createGraphqlYoga({
      config: api.config,
      db: api.app.db,
      services: {
        ...services,
        tenants: {
          ...services.tenants,
          pendingMigrations: (database) => {
            tenantReads += 1;
            return services.tenants.pendingMigrations(database);
          },
          migrationHistory: (database) => {
            tenantReads += 1;
            return services.tenants.migrationHistory(database);
          },
        },
      },
      events: api.app.events,
      eventsReady: async () => undefined,
      logger: createLogger('silent'),
    });
  });

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are checked by shape
  async function post(query: string, variables: Record<string, unknown> = {}): Promise<GraphqlResponse<any>> {
    const response = await yoga.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${BOOTSTRAP_TOKEN}` },
      body: JSON.stringify({ query, variables }),
    });
    return JSON.parse(await response.text()) as GraphqlResponse;
  }

  it('refuses 200 aliases over tenants(first: 50) without reading any tenant database', async () => {
    tenantReads = 0;
    const result = await post(aliasedTenantReads(200, 50));
    expect(result.data ?? null).toBeNull();
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0]?.extensions?.code).toMatch(/^QUERY_(TOKENS|ALIASES)$/);
    expect(tenantReads).toBe(0);
  });

  it('refuses more aliases than the limit, naming it', async () => {
    tenantReads = 0;
    const result = await post(aliasedTenantReads(16, 1));
    expect(result.data ?? null).toBeNull();
    expect(result.errors?.[0]?.extensions?.code).toBe('QUERY_ALIASES');
    expect(result.errors?.[0]?.message).toContain('15');
    expect(tenantReads).toBe(0);
    const within = await post(aliasedTenantReads(15, 1));
    expect(within.errors).toBeUndefined();
  });

  it('refuses a query whose cost is over the limit, within the alias limit, before any tenant read', async () => {
    tenantReads = 0;
    const result = await post(aliasedTenantReads(10, 100));
    expect(result.data ?? null).toBeNull();
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0]?.extensions?.code).toBe('QUERY_COMPLEXITY');
    expect(result.errors?.[0]?.message).toMatch(/exceeds max complexity of 5000/);
    expect(tenantReads).toBe(0);
  });

  it('prices the cost from the first argument, also when it comes in a variable', async () => {
    const query = `query ($first: Int) { a: tenants(first: $first) { edges { node { ${TENANT_DATABASE_FIELDS} } } }
      b: tenants(first: $first) { edges { node { ${TENANT_DATABASE_FIELDS} } } } }`;
    tenantReads = 0;
    const small = await post(query, { first: 5 });
    expect(small.errors).toBeUndefined();
    expect(tenantReads).toBe(2 * 2 * (small.data?.a.edges as unknown[]).length);
    expect(tenantReads).toBeGreaterThanOrEqual(12);
    tenantReads = 0;
    const large = await post(query, { first: 100 });
    expect(large.errors?.[0]?.extensions?.code).toBe('QUERY_COMPLEXITY');
    expect(tenantReads).toBe(0);
  });

  it('answers a console-sized page, with each tenant read from its own database', async () => {
    tenantReads = 0;
    const result = await post(CONSOLE_PAGE, { first: 50 });
    expect(result.errors).toBeUndefined();
    const edges = result.data?.tenants.edges as { node: { status: string; pendingMigrations: unknown[] } }[];
    expect(result.data?.tenants.totalCount).toBe(edges.length);
    const active = edges.filter((edge) => edge.node.status === 'ACTIVE');
    expect(active.length).toBeGreaterThanOrEqual(3);
    for (const edge of active) expect(edge.node.pendingMigrations).toEqual([]);
    expect(tenantReads).toBe(edges.length);
  });

  it('refuses a query deeper than the limit', async () => {
    const deep = createGraphqlYoga({
      config: { ...api.config, graphqlLimits: { ...api.config.graphqlLimits, maxDepth: 3 } },
      db: api.app.db,
      services: api.app.services,
      events: api.app.events,
      eventsReady: async () => undefined,
      logger: createLogger('silent'),
    });
    const response = await deep.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${BOOTSTRAP_TOKEN}` },
      body: JSON.stringify({ query: `{ tenants { edges { node { databases { id } } } } }` }),
    });
    const result = JSON.parse(await response.text()) as GraphqlResponse;
    expect(result.errors?.[0]?.extensions?.code).toBe('QUERY_DEPTH');
    expect(result.errors?.[0]?.message).toContain('3');
  });

  it('refuses a document with too many tokens, and one with too many directives', async () => {
    const tokens = await post(`{ ${Array.from({ length: 1100 }, () => '__typename').join(' ')} }`);
    expect(tokens.errors?.[0]?.extensions?.code).toBe('QUERY_TOKENS');
    expect(tokens.errors?.[0]?.message).toContain('1000');

    const directives = await post(`{ __typename ${'@include(if: true) '.repeat(60)} }`);
    expect(directives.errors?.[0]?.extensions?.code).toBe('QUERY_DIRECTIVES');
    expect(directives.errors?.[0]?.message).toContain('50');
  });

  it('reads tenant databases through the API pools, whose statement timeout ends a blocked read', async () => {
    const server = new pg.Client({ connectionString: api.config.tenantDatabaseUrl });
    await server.connect();
    try {
      await server.query('BEGIN');
      // Holding this lock blocks every ledger read of that tenant.
      await server.query(`LOCK TABLE "${schemas[0]}".${LEDGER_TABLE} IN ACCESS EXCLUSIVE MODE`);
      const pending = api.gql(
        `query ($name: String) { tenant(name: $name) { migrationHistory { version } } }`,
        {
          name: names[0],
        },
      );
      const waiting = await expectEventually(async () => {
        const { rows } = await server.query<{ application_name: string }>(
          `SELECT application_name FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        );
        expect(rows).toHaveLength(1);
        return rows[0]!.application_name;
      });
      expect(waiting).toBe('tenant-control-plane-api');
      const result = await pending;
      expect(result.errors?.[0]?.extensions?.code).toBe('TENANT_DATABASE_TIMEOUT');
      expect(result.errors?.[0]?.message).toContain(`${READ_TIMEOUT_MS} ms`);
    } finally {
      await server.query('ROLLBACK');
      await server.end();
    }
  });
});
