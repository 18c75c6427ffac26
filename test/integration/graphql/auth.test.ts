import { describe, expect, it } from 'vitest';
import { useApiHarness } from './harness.js';

describe('authentication and roles', () => {
  const api = useApiHarness();

  it('refuses a request without a token with UNAUTHENTICATED', async () => {
    const result = await api.gql('{ viewer { name role } }', {}, null);
    expect(result.data).toBeNull();
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses an unknown token with UNAUTHENTICATED', async () => {
    const result = await api.gql(
      '{ tenants { totalCount } }',
      {},
      'cpt_not-a-real-token-at-all-000000000000',
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses subscriptions without a token', async () => {
    const yoga = api.app.yoga;
    if (!yoga) throw new Error('the harness runs the api role');
    const response = await yoga.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { tenantEvents(tenantId: "x") { type } }' }),
    });
    const text = await response.text();
    expect(text).toContain('UNAUTHENTICATED');
  });

  it('shows the principal to a VIEWER token and lets it read', async () => {
    const token = await api.createToken('VIEWER', 'reader');
    const result = await api.gql('{ viewer { name role } tenants { totalCount } }', {}, token);
    expect(result.errors).toBeUndefined();
    expect(result.data?.viewer).toEqual({ name: 'reader', role: 'VIEWER' });
  });

  it('refuses a mutation to a VIEWER with FORBIDDEN and changes nothing', async () => {
    const token = await api.createToken('VIEWER');
    const before = await api.app.db.tenant.count();
    const result = await api.gql(
      'mutation { createTenant(input: { name: "viewer-made" }) { __typename } }',
      {},
      token,
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await api.app.db.tenant.count()).toBe(before);
    const config = await api.gql(
      'mutation { setSystemConfig(input: { key: "x", value: 1 }) { __typename } }',
      {},
      token,
    );
    expect(config.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await api.app.db.systemConfig.count()).toBe(0);
  });

  it('keeps ADMIN mutations from an OPERATOR', async () => {
    const token = await api.createToken('OPERATOR');
    const result = await api.gql(
      'mutation { createApiToken(input: { name: "sneaky", role: ADMIN }) { __typename } }',
      {},
      token,
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await api.app.db.apiToken.count({ where: { name: 'sneaky' } })).toBe(0);
    const allowed = await api.gql(
      'mutation { setSystemConfig(input: { key: "operator.ok", value: true }) { __typename } }',
      {},
      token,
    );
    expect(allowed.data).toEqual({ setSystemConfig: { __typename: 'SetSystemConfigSuccess' } });
  });

  it('refuses a revoked token', async () => {
    const created = await api.gql(
      `mutation { createApiToken(input: { name: "short-lived", role: OPERATOR }) {
        ... on CreateApiTokenSuccess { token apiToken { id name role createdAt } } } }`,
    );
    const { token, apiToken } = created.data?.createApiToken as { token: string; apiToken: { id: string } };
    expect((await api.gql('{ viewer { role } }', {}, token)).data?.viewer).toEqual({ role: 'OPERATOR' });
    const revoked = await api.gql(
      'mutation ($id: ID!) { revokeApiToken(input: { id: $id }) { ... on RevokeApiTokenSuccess { apiToken { revokedAt } } } }',
      { id: apiToken.id },
    );
    expect(revoked.data?.revokeApiToken.apiToken.revokedAt).toEqual(expect.any(String));
    const after = await api.gql('{ viewer { role } }', {}, token);
    expect(after.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('stores only token hashes and never shows a token again', async () => {
    const token = await api.createToken('VIEWER', 'hashed');
    const row = await api.app.db.apiToken.findFirstOrThrow({ where: { name: 'hashed' } });
    expect(row.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(token);
    await api.gql('{ node(id: "x") { id } }', {}, token);
    const bodies = api.responseBodies.filter((body) => !body.includes('"createApiToken"'));
    expect(bodies.some((body) => body.includes(token))).toBe(false);
    expect(api.logLines.some((line) => line.includes(token))).toBe(false);
    const audit = await api.app.db.auditLog.findMany({ where: { action: 'createApiToken' } });
    expect(audit.length).toBeGreaterThan(0);
    expect(
      JSON.stringify(audit, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value)),
    ).not.toContain(token);
  });
});
