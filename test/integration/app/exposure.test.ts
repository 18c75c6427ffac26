import WebSocket from 'ws';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useApiHarness } from '../graphql/harness.js';

// An open (AUTH_DISABLED) API is one web page away from `deleteTenant`: it must be reachable from
// this machine only, and browsers on other origins must get no CORS grant.
describe('an API with auth disabled', () => {
  const api = useApiHarness({ AUTH_DISABLED: 'true', CORS_ORIGINS: 'http://console.test:8080' });

  it('listens on the loopback interface only', async () => {
    await api.app.listen(0);
    const address = api.app.server?.address() as AddressInfo;
    expect(address.address).toBe('127.0.0.1');
  });

  it('grants no CORS to an origin that is not listed, in a preflight or a request', async () => {
    const preflight = await api.app.yoga!.fetch('http://localhost/graphql', {
      method: 'OPTIONS',
      headers: {
        origin: 'http://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    const response = await api.app.yoga!.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  // Browsers do not apply CORS to WebSocket: any page could open one to localhost and, with auth
  // disabled, run mutations over it. Only listed origins, the service's own and non-browsers connect.
  it('refuses a WebSocket upgrade from an unlisted origin, and accepts its own and listed ones', async () => {
    const port = api.app.server?.listening
      ? (api.app.server.address() as AddressInfo).port
      : await api.app.listen(0);
    const upgrade = (origin?: string) =>
      new Promise<number>((resolve, reject) => {
        const socket = new WebSocket(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws', {
          ...(origin ? { origin } : {}),
        });
        socket.once('open', () => {
          socket.close();
          resolve(101);
        });
        socket.once('unexpected-response', (_request, response) => {
          socket.terminate();
          resolve(response.statusCode ?? 0);
        });
        socket.once('error', reject);
      });
    expect(await upgrade('http://evil.example')).toBe(403);
    expect(await upgrade('http://console.test:8080')).toBe(101);
    expect(await upgrade(`http://127.0.0.1:${port}`)).toBe(101);
    expect(await upgrade()).toBe(101);
  });

  it('grants CORS to a listed origin', async () => {
    const preflight = await api.app.yoga!.fetch('http://localhost/graphql', {
      method: 'OPTIONS',
      headers: {
        origin: 'http://console.test:8080',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,authorization',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://console.test:8080');
  });

  it('serves GraphiQL from the service itself, with no script, style or font from another host', async () => {
    const response = await api.app.yoga!.fetch('http://localhost/graphql', {
      headers: { accept: 'text/html' },
    });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('GraphiQL');
    const external = [
      ...html.matchAll(/<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?([^"'\s>]+)/gi),
    ]
      .map((match) => match[1]!)
      .filter((url) => /^(?:https?:)?\/\//i.test(url));
    expect(external).toEqual([]);
    expect(html).not.toMatch(/unpkg\.com|jsdelivr|cdnjs/i);
  });
});

describe('an API with auth disabled, against cross-site requests that need no preflight', () => {
  const api = useApiHarness({ AUTH_DISABLED: 'true' });

  // A page on any origin may send these without asking (no preflight); none may run a mutation.
  it.each([
    ['text/plain', () => ({ 'content-type': 'text/plain' }) as Record<string, string>, (b: string) => b],
    [
      'multipart/form-data',
      (_body: string) => ({}) as Record<string, string>,
      (body: string) => {
        const form = new FormData();
        form.set('operations', body);
        form.set('map', '{}');
        return form;
      },
    ],
    [
      'application/x-www-form-urlencoded',
      (_body: string) => ({ 'content-type': 'application/x-www-form-urlencoded' }) as Record<string, string>,
      (body: string) =>
        new URLSearchParams({ query: (JSON.parse(body) as { query: string }).query }).toString(),
    ],
  ])('refuses a %s POST', async (_type, headersOf, bodyOf) => {
    const name = `csrf-${Math.random().toString(36).slice(2, 8)}`;
    const body = JSON.stringify({
      query: `mutation { setSystemConfig(input: { key: "${name}", value: 1 }) { __typename } }`,
    });
    const response = await api.app.yoga!.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { origin: 'http://evil.example', ...headersOf(body) },
      body: bodyOf(body),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    const stored = await api.gql<{ systemConfig: unknown }>(
      `query ($key: String!) { systemConfig(key: $key) { key } }`,
      {
        key: name,
      },
    );
    expect(stored.data?.systemConfig ?? null).toBeNull();
  });
});
