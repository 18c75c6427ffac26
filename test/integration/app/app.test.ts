import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { describe, expect, it, beforeAll } from 'vitest';
import { BOOTSTRAP_TOKEN, useApiHarness } from '../graphql/harness.js';

describe('the app over HTTP, SSE and WebSocket', () => {
  const api = useApiHarness();
  let base = '';

  beforeAll(async () => {
    const port = await api.app.listen(0);
    base = `http://127.0.0.1:${port}`;
  });

  it('answers health, readiness and metrics', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (
      await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${BOOTSTRAP_TOKEN}` } })
    ).text();
    expect(metrics).toContain('process_resident_memory_bytes');
    expect(metrics).toContain('http_requests_total{route="/healthz",status="200"}');
    expect(metrics).toContain('graphql_operations_total');
  });

  it('streams a provisioning run over SSE from SNAPSHOT to RUN_FINISHED, then ends', async () => {
    const name = api.tenantName('sse');
    const created = await api.gql(
      `mutation ($name: String!) { createTenant(input: { name: $name }) {
        ... on CreateTenantSuccess { provisioning { id } } } }`,
      { name },
    );
    const runId = created.data?.createTenant.provisioning.id as string;
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${BOOTSTRAP_TOKEN}`,
      },
      body: JSON.stringify({
        query: `subscription ($id: ID!) { migrationRunEvents(runId: $id) {
          type at run { id status } progress { total succeeded pending } } }`,
        variables: { id: runId },
      }),
    });
    // The stream must end by itself after RUN_FINISHED (or right after the SNAPSHOT of an ended run).
    const text = await response.text();
    const events = text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map(
        (line) =>
          JSON.parse(line.slice(6)) as {
            data?: { migrationRunEvents: { type: string; run: { status: string } } };
          },
      )
      .filter((payload) => payload.data)
      .map((payload) => payload.data!.migrationRunEvents);
    expect(events[0]?.type).toBe('SNAPSHOT');
    const last = events.at(-1)!;
    expect(['SNAPSHOT', 'RUN_FINISHED']).toContain(last.type);
    expect(last.run.status).toBe('SUCCEEDED');
  });

  it('serves subscriptions over WebSocket with the token in connectionParams', async () => {
    const connect = (authorization?: string): Client =>
      createClient({
        url: `${base.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: authorization ? { authorization } : {},
        retryAttempts: 0,
      });
    const name = api.tenantName('ws');
    const created = await api.gql(
      `mutation ($name: String!) { createTenant(input: { name: $name }) {
        ... on CreateTenantSuccess { provisioning { id } } } }`,
      { name },
    );
    const runId = created.data?.createTenant.provisioning.id as string;
    const query = `subscription ($id: ID!) { migrationRunEvents(runId: $id) { type run { status } } }`;

    const client = connect(`Bearer ${BOOTSTRAP_TOKEN}`);
    const types: string[] = [];
    for await (const result of client.iterate<{ migrationRunEvents: { type: string } }>({
      query,
      variables: { id: runId },
    })) {
      expect(result.errors).toBeUndefined();
      types.push(result.data!.migrationRunEvents.type);
    }
    expect(types[0]).toBe('SNAPSHOT');
    await client.dispose();

    // Without a token the socket is refused at connection_init (4403 Forbidden).
    const anonymous = connect();
    const refused = await (async () => {
      try {
        for await (const result of anonymous.iterate({ query, variables: { id: runId } })) return result;
      } catch (error) {
        return error;
      }
    })();
    expect((refused as { code?: number }).code).toBe(4403);
    await anonymous.dispose();
  });
});
