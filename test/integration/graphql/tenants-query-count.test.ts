import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrismaClient } from '../../../src/generated/prisma/client.js';
import type { ControlPlaneDb } from '../../../src/db/control-plane.js';
import { createGraphqlYoga } from '../../../src/graphql/server.js';
import { createLogger } from '../../../src/logger.js';
import { BOOTSTRAP_TOKEN, useApiHarness } from './harness.js';

const PAGE = `query ($first: Int) { tenants(first: $first) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { id tenantId name environment status schemaVersion
    databases { id isolation databaseName schemaName host port status schemaVersion lastError } } } } }`;
const PAGE_WITH_SERVERS = `query ($first: Int) { tenants(first: $first) {
  edges { node { tenantId databases { id server { id name host port acceptingTenants } } } } } }`;

describe('the tenants connection', () => {
  const api = useApiHarness();
  let db: ControlPlaneDb | undefined;
  const statements: string[] = [];

  beforeAll(async () => {
    const client = new PrismaClient({
      adapter: new PrismaPg({ connectionString: api.database.url, max: 2 }, { schema: 'control_plane' }),
      log: [{ emit: 'event', level: 'query' }],
    });
    client.$on('query', (event) => statements.push(event.query));
    db = client as unknown as ControlPlaneDb;
    // Registered at boot; every tenant database row points at its server.
    const server = await api.app.db.databaseServer.findUniqueOrThrow({ where: { name: 'default' } });
    for (let i = 0; i < 100; i += 1) {
      const name = `count-${String(i).padStart(3, '0')}`;
      await api.app.db.tenant.create({
        data: {
          name,
          status: 'ACTIVE',
          databases: {
            create: {
              connectionStringEncrypted: 'unused',
              databaseName: api.database.name,
              host: '127.0.0.1',
              schemaName: `tenant_count_${i}`,
              status: 'ACTIVE',
              schemaVersion: '0004',
              serverId: server.id,
            },
          },
        },
      });
    }
  });

  afterAll(async () => {
    await db?.$disconnect();
  });

  async function countStatements(first: number, query = PAGE) {
    const yoga = createGraphqlYoga({
      config: api.config,
      db: db!,
      services: api.app.services,
      events: api.app.events,
      eventsReady: async () => undefined,
      logger: createLogger('silent'),
    });
    statements.length = 0;
    const response = await yoga.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${BOOTSTRAP_TOKEN}` },
      body: JSON.stringify({ query, variables: { first } }),
    });
    const result = (await response.json()) as { data: { tenants: { edges: unknown[]; totalCount: number } } };
    return { result, count: statements.length };
  }

  it('makes the same small number of SQL queries for 5 and for 50 tenants', async () => {
    const small = await countStatements(5);
    const large = await countStatements(50);
    expect(small.result.data.tenants.edges).toHaveLength(5);
    expect(large.result.data.tenants.edges).toHaveLength(50);
    expect(large.result.data.tenants.totalCount).toBe(
      await api.app.db.tenant.count({ where: { deletedAt: null } }),
    );
    expect(small.count).toBeGreaterThan(0);
    expect(large.count).toBe(small.count);
    expect(large.count).toBeLessThanOrEqual(4);
  });

  it("reads 100 tenants with their databases' servers in as many statements as 5 (issue 12)", async () => {
    const small = await countStatements(5, PAGE_WITH_SERVERS);
    const large = await countStatements(100, PAGE_WITH_SERVERS);
    expect(large.result.data.tenants.edges).toHaveLength(100);
    const servers = (
      large.result.data.tenants.edges as { node: { databases: { server: { name: string } }[] } }[]
    ).flatMap((edge) => edge.node.databases.map((database) => database.server.name));
    expect(new Set(servers)).toEqual(new Set(['default']));
    expect(small.count).toBeGreaterThan(0);
    expect(large.count).toBe(small.count);
    expect(large.count).toBeLessThanOrEqual(5);
  });
});
