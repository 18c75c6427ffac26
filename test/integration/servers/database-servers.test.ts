/**
 * Database servers through the API: `default` registered at start, registerDatabaseServer
 * (connection and privileges checked first, the connection string never shown), placement of
 * new tenants over two real PostgreSQL servers.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { withDatabase } from '../../../src/config.js';
import { withConnection } from '../../../src/db/pg.js';
import { expectEventually } from '../../helpers/eventually.js';
import { secondServerUrl, useSecondServer } from '../../helpers/second-server.js';
import { useApiHarness } from '../graphql/harness.js';

const REGISTER = `mutation ($input: RegisterDatabaseServerInput!) {
  registerDatabaseServer(input: $input) {
    __typename
    ... on RegisterDatabaseServerSuccess { server { id name host port acceptingTenants maxConcurrentMigrations tenantCount } }
    ... on Error { message code }
    ... on ValidationError { field }
  }
}`;
const SERVERS = `{ databaseServers { id name host port acceptingTenants maxConcurrentMigrations tenantCount } }`;
const CREATE_TENANT = `mutation ($input: CreateTenantInput!) {
  createTenant(input: $input) {
    __typename
    ... on CreateTenantSuccess { tenant { id databases { server { name } } } provisioning { id } }
    ... on Error { message }
    ... on ValidationError { field }
  }
}`;

interface Server {
  id: string;
  name: string;
  host: string;
  port: number;
  acceptingTenants: boolean;
  maxConcurrentMigrations: number;
  tenantCount: number;
}

describe('database servers', () => {
  const api = useApiHarness();
  const secondServer = useSecondServer();
  const second = secondServer;
  // Trust auth ignores the password; it stands for a secret that must never come back.
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const secretUrl = () => second.url.replace('postgres@', `postgres:${password}@`);

  async function servers(): Promise<Server[]> {
    const result = await api.gql<{ databaseServers: Server[] }>(SERVERS);
    return result.data!.databaseServers;
  }

  function expectNoSecretShown(): void {
    for (const text of [...api.responseBodies, ...api.logLines]) {
      expect(text).not.toContain(password);
    }
  }

  it('registers the TENANT_DATABASE_URL server as default at start, once', async () => {
    const list = await servers();
    expect(list.map((server) => server.name)).toEqual(['default']);
    expect(list[0]).toMatchObject({
      host: '127.0.0.1',
      port: 5432,
      acceptingTenants: true,
      maxConcurrentMigrations: 32,
    });
    // A second start (the same step) changes nothing.
    await api.app.services.servers.ensureDefaultServer(api.config.tenantDatabaseUrl);
    expect((await servers()).map((server) => server.name)).toEqual(['default']);
  });

  it('moves tenant databases registered before servers existed onto default at start', async () => {
    const tenant = await api.app.db.tenant.create({
      data: {
        name: api.tenantName('legacy'),
        databases: {
          create: { connectionStringEncrypted: 'x', databaseName: 'x', host: '127.0.0.1', schemaName: 'x' },
        },
      },
      include: { databases: true },
    });
    expect(tenant.databases[0]!.serverId).toBeNull();
    await api.app.services.servers.ensureDefaultServer(api.config.tenantDatabaseUrl);
    const moved = await api.app.db.tenantDatabase.findUniqueOrThrow({
      where: { id: tenant.databases[0]!.id },
    });
    const defaultServer = await api.app.services.servers.defaultServer();
    expect(moved.serverId).toBe(defaultServer.id);
    await api.app.db.tenant.delete({ where: { tenantId: tenant.tenantId } });
  });

  it('refuses an unknown role, a missing database and an unreachable host with ValidationError, saving nothing', async () => {
    const cases = [
      withDatabase(secondServerUrl(), second.name).replace(
        'postgres@',
        `nobody_${randomBytes(3).toString('hex')}:${password}@`,
      ),
      withDatabase(secondServerUrl(), `missing_${randomBytes(3).toString('hex')}`).replace(
        'postgres@',
        `postgres:${password}@`,
      ),
      `postgresql://postgres:${password}@127.0.0.1:1/postgres`,
      'mysql://somewhere/db',
    ];
    for (const connectionString of cases) {
      const result = await api.gql(REGISTER, { input: { name: 'broken', connectionString } });
      expect(result.data?.registerDatabaseServer).toMatchObject({
        __typename: 'ValidationError',
        field: 'connectionString',
      });
      expect(result.data?.registerDatabaseServer.message).not.toContain(password);
    }
    expect((await servers()).map((server) => server.name)).toEqual(['default']);
    expectNoSecretShown();
  });

  it('refuses a role that may not create databases, naming the privilege', async () => {
    const role = `weak_${randomBytes(4).toString('hex')}`;
    await withConnection(secondServerUrl(), (client) => client.query(`CREATE ROLE ${role} LOGIN NOCREATEDB`));
    try {
      const connectionString = second.url.replace('postgres@', `${role}@`);
      const result = await api.gql(REGISTER, { input: { name: 'weak', connectionString } });
      expect(result.data?.registerDatabaseServer.__typename).toBe('ValidationError');
      expect(result.data?.registerDatabaseServer.message).toContain('CREATEDB');
      expect((await servers()).map((server) => server.name)).toEqual(['default']);
    } finally {
      await withConnection(secondServerUrl(), (client) => client.query(`DROP ROLE ${role}`));
    }
  });

  it('registers a server after checking it; the connection string is in no response, log line or audit row', async () => {
    const result = await api.gql(REGISTER, {
      input: { name: 'second', connectionString: secretUrl(), maxConcurrentMigrations: 3 },
    });
    expect(result.data?.registerDatabaseServer).toMatchObject({
      __typename: 'RegisterDatabaseServerSuccess',
      server: {
        name: 'second',
        host: '127.0.0.1',
        port: 5433,
        acceptingTenants: true,
        maxConcurrentMigrations: 3,
        tenantCount: 0,
      },
    });
    const again = await api.gql(REGISTER, { input: { name: 'second', connectionString: secretUrl() } });
    expect(again.data?.registerDatabaseServer.__typename).toBe('ConflictError');
    const row = await api.app.db.databaseServer.findUniqueOrThrow({ where: { name: 'second' } });
    expect(row.connectionStringEncrypted).not.toContain(password);
    const audit = await api.app.db.auditLog.findMany({ where: { action: 'registerDatabaseServer' } });
    expect(audit.length).toBeGreaterThan(0);
    expect(JSON.stringify(audit.map(({ input, error }) => ({ input, error })))).not.toContain(password);
    expectNoSecretShown();
  });

  it('places 40 new tenants 20 and 20 over two servers, and provisions each on its own', async () => {
    const names = Array.from({ length: 40 }, (_, i) =>
      api.tenantName(`spread-${String(i).padStart(2, '0')}`),
    );
    const placed: string[] = [];
    for (const name of names) {
      const result = await api.gql(CREATE_TENANT, { input: { name } });
      const created = result.data?.createTenant;
      expect(created?.__typename, JSON.stringify(result)).toBe('CreateTenantSuccess');
      placed.push(created.tenant.databases[0].server.name);
    }
    expect(placed.filter((name) => name === 'default')).toHaveLength(20);
    expect(placed.filter((name) => name === 'second')).toHaveLength(20);
    const counts = Object.fromEntries((await servers()).map((server) => [server.name, server.tenantCount]));
    expect(counts).toEqual({ default: 20, second: 20 });
    await expectEventually(
      async () => {
        const active = await api.app.db.tenant.count({ where: { name: { in: names }, status: 'ACTIVE' } });
        expect(active).toBe(40);
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    const schemas = await second.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_namespace WHERE nspname LIKE 'tenant_spread_%'`,
    );
    expect(schemas[0]!.n).toBe(20);
  });

  it('places explicitly, DATABASE isolation too, and refuses a server that stopped accepting tenants', async () => {
    const second = (await servers()).find((server) => server.name === 'second')!;
    const name = api.tenantName('isolated');
    const objectName = `tenant_${name.replace(/-/g, '_')}`;
    secondServer.dropAfter(objectName);
    const created = await api.gql(CREATE_TENANT, {
      input: { name, isolation: 'DATABASE', server: second.id },
    });
    expect(created.data?.createTenant.tenant.databases[0].server.name).toBe('second');
    await expectEventually(
      async () => {
        const tenant = await api.app.db.tenant.findUniqueOrThrow({ where: { name } });
        expect(tenant.status).toBe('ACTIVE');
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const databases = await withConnection(
      secondServerUrl(),
      async (client) =>
        (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [objectName])).rows,
    );
    expect(databases).toHaveLength(1);

    const stop = await api.gql(
      `mutation ($input: UpdateDatabaseServerInput!) { updateDatabaseServer(input: $input) {
        __typename ... on UpdateDatabaseServerSuccess { server { acceptingTenants } } } }`,
      { input: { id: second.id, acceptingTenants: false } },
    );
    expect(stop.data?.updateDatabaseServer).toEqual({
      __typename: 'UpdateDatabaseServerSuccess',
      server: { acceptingTenants: false },
    });
    const refused = await api.gql(CREATE_TENANT, {
      input: { name: api.tenantName('refused'), server: second.id },
    });
    expect(refused.data?.createTenant).toMatchObject({ __typename: 'ValidationError', field: 'server' });
    const elsewhere = await api.gql(CREATE_TENANT, { input: { name: api.tenantName('elsewhere') } });
    expect(elsewhere.data?.createTenant.tenant.databases[0].server.name).toBe('default');
  });

  it('stays ready (/readyz) while a registered tenant server is unreachable', async () => {
    const id = randomUUID();
    await api.app.db.databaseServer.create({
      data: {
        id,
        name: 'unreachable',
        host: '127.0.0.1',
        port: 1,
        acceptingTenants: false,
        // Never opened: readiness does not touch tenant servers.
        connectionStringEncrypted: 'not-a-sealed-string',
      },
    });
    const port = await api.app.listen(0);
    const response = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ready\n');
    await api.app.db.databaseServer.delete({ where: { id } });
  });
});
