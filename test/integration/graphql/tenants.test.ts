import { describe, expect, it } from 'vitest';
import { expectEventually } from '../../helpers/eventually.js';
import { BOOTSTRAP_TOKEN, useApiHarness } from './harness.js';

const TENANT_FIELDS = `id tenantId name environment status deletedAt schemaVersion
  databases { id isolation databaseName schemaName host port status schemaVersion }`;

const CREATE = `mutation ($input: CreateTenantInput!) {
  createTenant(input: $input) {
    __typename
    ... on CreateTenantSuccess { tenant { ${TENANT_FIELDS} } provisioning { id kind status } }
    ... on Error { message code }
    ... on ValidationError { field }
  }
}`;

const TENANT = `query ($id: ID!) { tenant(id: $id) { ${TENANT_FIELDS}
  pendingMigrations { version }
  migrationHistory { version name checksum appliedAt executionMs checksumMatches } } }`;

describe('tenants through the API', () => {
  const api = useApiHarness();
  const created: Record<string, { id: string; tenantId: string }> = {};

  async function createTenant(input: Record<string, unknown>) {
    const result = await api.gql(CREATE, { input });
    expect(result.errors).toBeUndefined();
    return result.data?.createTenant;
  }

  async function waitActive(id: string) {
    return expectEventually(
      async () => {
        const result = await api.gql(TENANT, { id });
        const tenant = result.data?.tenant;
        expect(tenant?.status).toBe('ACTIVE');
        expect(tenant?.schemaVersion).toBe(api.app.catalog.latest);
        return tenant;
      },
      { timeoutMs: 45_000, intervalMs: 200 },
    );
  }

  it('provisions SCHEMA and DATABASE tenants to the latest version', async () => {
    const specs = [
      { key: 'alpha', isolation: 'SCHEMA', environment: 'STAGING' },
      { key: 'beta', isolation: 'DATABASE', environment: 'PRODUCTION' },
      { key: 'gamma', isolation: 'SCHEMA', environment: 'STAGING' },
    ];
    for (const spec of specs) {
      const name = api.tenantName(spec.key);
      const result = await createTenant({ name, isolation: spec.isolation, environment: spec.environment });
      expect(result.__typename).toBe('CreateTenantSuccess');
      expect(result.tenant).toMatchObject({ name, status: 'PENDING', environment: spec.environment });
      expect(result.provisioning).toMatchObject({ kind: 'PROVISION' });
      const [database] = result.tenant.databases;
      expect(database.isolation).toBe(spec.isolation);
      const objectName = `tenant_${name.replace(/-/g, '_')}`;
      if (spec.isolation === 'SCHEMA') expect(database.schemaName).toBe(objectName);
      else expect(database).toMatchObject({ databaseName: objectName, schemaName: null });
      created[spec.key] = { id: result.tenant.id, tenantId: result.tenant.tenantId };
    }
    for (const spec of specs) {
      const tenant = await waitActive(created[spec.key]!.id);
      expect(tenant.pendingMigrations).toEqual([]);
      expect(tenant.migrationHistory.map((entry: { version: string }) => entry.version)).toEqual(
        api.app.catalog.files.map((file) => file.version),
      );
      expect(
        tenant.migrationHistory.every((entry: { checksumMatches: boolean }) => entry.checksumMatches),
      ).toBe(true);
    }
  });

  it('reads migrationHistory from the tenant ledger itself', async () => {
    const alpha = await api.app.db.tenantDatabase.findFirstOrThrow({
      where: { tenantId: created.alpha!.tenantId },
    });
    const schema = alpha.schemaName!;
    const last = api.app.catalog.files.at(-1)!;
    await api.database.pool.query(`DELETE FROM "${schema}".control_plane_ledger WHERE version = $1`, [
      last.version,
    ]);
    const result = await api.gql(TENANT, { id: created.alpha!.id });
    expect(
      result.data?.tenant.migrationHistory.map((entry: { version: string }) => entry.version),
    ).not.toContain(last.version);
    expect(result.data?.tenant.pendingMigrations).toEqual([{ version: last.version }]);
    // The cached version is the control plane's, unchanged by the ledger edit.
    expect(result.data?.tenant.schemaVersion).toBe(api.app.catalog.latest);
  });

  it('pages with filters and a total count', async () => {
    const query = `query ($first: Int, $after: String, $filter: TenantFilter) {
      tenants(first: $first, after: $after, filter: $filter) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name environment } } } }`;
    const staging = {
      environment: ['STAGING'],
      nameContains: created.alpha ? api.tenantName('').slice(1) : '',
    };
    const first = await api.gql(query, { first: 1, filter: staging });
    expect(first.errors).toBeUndefined();
    expect(first.data?.tenants.totalCount).toBe(2);
    expect(first.data?.tenants.edges).toHaveLength(1);
    expect(first.data?.tenants.pageInfo.hasNextPage).toBe(true);
    const second = await api.gql(query, {
      first: 1,
      after: first.data?.tenants.pageInfo.endCursor,
      filter: staging,
    });
    expect(second.data?.tenants.edges).toHaveLength(1);
    expect(second.data?.tenants.pageInfo.hasNextPage).toBe(false);
    const names = [first, second].map((page) => page.data?.tenants.edges[0].node.name);
    expect(names).toEqual([api.tenantName('alpha'), api.tenantName('gamma')]);
    const all = await api.gql(query, { first: 50, filter: { status: ['ACTIVE'] } });
    expect(all.data?.tenants.totalCount).toBeGreaterThanOrEqual(3);
    const production = await api.gql(query, { filter: { environment: ['PRODUCTION'] } });
    expect(
      production.data?.tenants.edges.map((edge: { node: { name: string } }) => edge.node.name),
    ).toContain(api.tenantName('beta'));
  });

  it('refuses a duplicate name with ConflictError and creates nothing', async () => {
    const count = () =>
      Promise.all([
        api.app.db.tenant.count(),
        api.app.db.tenantDatabase.count(),
        api.app.db.migrationRun.count(),
      ]);
    const before = await count();
    const result = await createTenant({ name: api.tenantName('alpha') });
    expect(result).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(await count()).toEqual(before);
  });

  it('refuses bad names with ValidationError and creates nothing', async () => {
    const before = await api.app.db.tenant.count();
    const runsBefore = await api.app.db.migrationRun.count();
    for (const name of [
      'Upper',
      'x; drop schema public',
      'a'.repeat(200),
      '',
      'pg_catalog',
      'public',
      '1abc',
    ]) {
      const result = await createTenant({ name });
      expect(result).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION', field: 'name' });
    }
    expect(await api.app.db.tenant.count()).toBe(before);
    expect(await api.app.db.migrationRun.count()).toBe(runsBefore);
  });

  it('drops nothing when confirmName is wrong', async () => {
    const result = await api.gql(
      `mutation ($input: DeleteTenantInput!) { deleteTenant(input: $input) {
        __typename ... on ValidationError { field code } } }`,
      { input: { id: created.gamma!.id, confirmName: 'not-the-name', dropData: true } },
    );
    expect(result.data?.deleteTenant).toEqual({
      __typename: 'ValidationError',
      field: 'confirmName',
      code: 'VALIDATION',
    });
    const tenant = await api.app.db.tenant.findUniqueOrThrow({
      where: { tenantId: created.gamma!.tenantId },
    });
    expect(tenant).toMatchObject({ status: 'ACTIVE', deletedAt: null });
    expect(await schemaExists(`tenant_${api.tenantName('gamma').replace(/-/g, '_')}`)).toBe(true);
  });

  it('keeps dropping data for ADMIN', async () => {
    const operator = await api.createToken('OPERATOR');
    const result = await api.gql(
      `mutation ($input: DeleteTenantInput!) { deleteTenant(input: $input) { __typename } }`,
      { input: { id: created.gamma!.id, confirmName: api.tenantName('gamma'), dropData: true } },
      operator,
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await schemaExists(`tenant_${api.tenantName('gamma').replace(/-/g, '_')}`)).toBe(true);
  });

  it('drops the schema with dropData and keeps the tenant as a deleted record', async () => {
    const name = api.tenantName('gamma');
    const result = await api.gql(
      `mutation ($input: DeleteTenantInput!) { deleteTenant(input: $input) {
        __typename ... on DeleteTenantSuccess { tenant { status deletedAt } } } }`,
      { input: { id: created.gamma!.id, confirmName: name, dropData: true } },
    );
    expect(result.data?.deleteTenant.__typename).toBe('DeleteTenantSuccess');
    expect(result.data?.deleteTenant.tenant).toMatchObject({
      status: 'INACTIVE',
      deletedAt: expect.any(String),
    });
    expect(await schemaExists(`tenant_${name.replace(/-/g, '_')}`)).toBe(false);
    const listed = await api.gql(`{ tenants(first: 100) { edges { node { name } } } }`);
    expect(
      listed.data?.tenants.edges.map((edge: { node: { name: string } }) => edge.node.name),
    ).not.toContain(name);
    const withDeleted = await api.gql(
      `{ tenants(first: 100, filter: { includeDeleted: true }) { edges { node { name } } } }`,
    );
    expect(
      withDeleted.data?.tenants.edges.map((edge: { node: { name: string } }) => edge.node.name),
    ).toContain(name);
  });

  it('deactivates without dropping data when dropData is not set', async () => {
    const result = await api.gql(
      `mutation ($input: DeleteTenantInput!) { deleteTenant(input: $input) {
        ... on DeleteTenantSuccess { tenant { status deletedAt } } } }`,
      { input: { id: created.alpha!.id, confirmName: api.tenantName('alpha') } },
    );
    expect(result.data?.deleteTenant.tenant).toEqual({ status: 'INACTIVE', deletedAt: null });
    expect(await schemaExists(`tenant_${api.tenantName('alpha').replace(/-/g, '_')}`)).toBe(true);
  });

  it('writes an audit row for every mutation, without secrets', async () => {
    const rows = await api.app.db.auditLog.findMany({
      where: { action: { in: ['createTenant', 'deleteTenant'] } },
    });
    const outcomes = new Set(rows.map((row) => `${row.action}:${row.outcome}`));
    expect(outcomes).toContain('createTenant:success');
    expect(outcomes).toContain('createTenant:VALIDATION');
    expect(outcomes).toContain('createTenant:CONFLICT');
    expect(outcomes).toContain('deleteTenant:success');
    expect(outcomes).toContain('deleteTenant:FORBIDDEN');
    const created = rows.find((row) => row.action === 'createTenant' && row.outcome === 'success');
    expect(created).toMatchObject({
      actor: 'bootstrap-admin',
      targetType: 'Tenant',
      targetId: expect.any(String),
    });
    expect(created?.input).toMatchObject({ name: expect.any(String) });
  });

  it('never shows a connection string or token in responses or logs', async () => {
    const secrets = [api.database.url, 'postgresql://', 'postgres://', BOOTSTRAP_TOKEN];
    for (const secret of secrets) {
      expect(api.responseBodies.some((body) => body.includes(secret))).toBe(false);
      expect(api.logLines.some((line) => line.includes(secret))).toBe(false);
    }
    const audit = await api.app.db.auditLog.findMany();
    const text = JSON.stringify(audit, (_key, value: unknown) =>
      typeof value === 'bigint' ? String(value) : value,
    );
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  async function schemaExists(schema: string): Promise<boolean> {
    const result = await api.database.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    return result.rowCount === 1;
  }
});
