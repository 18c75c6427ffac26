import { getIntrospectionQuery } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOOTSTRAP_TOKEN, useApiHarness } from './harness.js';

const METRICS_TOKEN = 'metrics-scraper-0123456789';

describe('surfaces that need a token', () => {
  const api = useApiHarness({ METRICS_TOKEN });
  let base = '';
  let viewer = '';

  beforeAll(async () => {
    base = `http://127.0.0.1:${await api.app.listen(0)}`;
    viewer = await api.createToken('VIEWER', 'surfaces-viewer');
  });

  it('refuses introspection without a token, and answers it for any role', async () => {
    for (const query of [
      getIntrospectionQuery(),
      '{ __schema { queryType { name } } }',
      '{ __type(name: "Tenant") { name } }',
    ]) {
      const anonymous = await api.gql(query, {}, null);
      expect(anonymous.data ?? null).toBeNull();
      expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      expect(JSON.stringify(anonymous)).not.toContain('Tenant"');
    }
    const asViewer = await api.gql(getIntrospectionQuery(), {}, viewer);
    expect(asViewer.errors).toBeUndefined();
    expect(asViewer.data?.__schema.queryType.name).toBe('Query');
    const typename = await api.gql('{ __typename }', {}, null);
    expect(typename.data).toEqual({ __typename: 'Query' });
  });

  it('suggests field names to authenticated callers only', async () => {
    const anonymous = await api.gql('{ tenantz { totalCount } }', {}, null);
    expect(anonymous.errors?.[0]?.message).toContain('tenantz');
    expect(anonymous.errors?.[0]?.message).not.toMatch(/Did you mean/);
    const known = await api.gql('{ tenantz { totalCount } }', {}, viewer);
    expect(known.errors?.[0]?.message).toMatch(/Did you mean .*"tenants"/);
  });

  it('serves /metrics to a Bearer API token or METRICS_TOKEN, and to nobody else', async () => {
    const scrape = (authorization?: string) =>
      fetch(`${base}/metrics`, { headers: authorization ? { authorization } : {} });
    const anonymous = await scrape();
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await anonymous.text()).not.toContain('process_resident_memory_bytes');
    expect((await scrape('Bearer not-a-token-at-all')).status).toBe(401);
    for (const token of [viewer, BOOTSTRAP_TOKEN, METRICS_TOKEN]) {
      const response = await scrape(`Bearer ${token}`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('process_resident_memory_bytes');
    }
  });

  it('keeps /healthz and /readyz open', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });
});
