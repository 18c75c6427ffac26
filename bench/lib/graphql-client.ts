import http from 'node:http';
/** Minimal GraphQL-over-HTTP and GraphQL-over-SSE clients for the benchmarks (node:http). */
export interface GraphqlEndpoint {
  readonly url: string;
  readonly token: string;
}

// Requests reuse their connections, as any real client (browser, curl with keep-alive) would.
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** Runs one operation; throws on transport or GraphQL errors. */
export function gql<T = Record<string, unknown>>(
  endpoint: GraphqlEndpoint,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const body = JSON.stringify({ query, variables });
  return new Promise<T>((resolve, reject) => {
    const request = http.request(
      endpoint.url,
      {
        method: 'POST',
        agent: keepAlive,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${endpoint.token}`,
        },
      },
      (response) => {
        response.setEncoding('utf8');
        let text = '';
        response.on('data', (chunk: string) => (text += chunk));
        response.on('error', reject);
        response.on('end', () => {
          try {
            const parsed = JSON.parse(text) as { data?: T; errors?: { message: string }[] };
            if (parsed.errors?.length)
              throw new Error(`GraphQL error: ${parsed.errors.map((e) => e.message).join('; ')}`);
            if (!parsed.data) throw new Error(`GraphQL response without data (HTTP ${response.statusCode})`);
            resolve(parsed.data);
          } catch (error) {
            reject(error as Error);
          }
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * Subscribes over Server-Sent Events and calls `onEvent` with each payload's `data`; resolves
 * when the server ends the stream (or `signal` aborts).
 */
export function subscribeSse(
  endpoint: GraphqlEndpoint,
  query: string,
  variables: Record<string, unknown>,
  onEvent: (data: Record<string, unknown>, receivedAt: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  return subscribeSseRaw(
    endpoint,
    query,
    variables,
    (json, receivedAt) => {
      const payload = JSON.parse(json) as { data?: Record<string, unknown>; errors?: { message: string }[] };
      if (payload.errors?.length) throw new Error(`Subscription error: ${payload.errors[0]?.message}`);
      if (payload.data) onEvent(payload.data, receivedAt);
    },
    signal,
  );
}

/**
 * Subscribes over Server-Sent Events and calls `onPayload` with each event's raw JSON text.
 * Uses node:http and plain string scanning, and leaves parsing to the caller: with hundreds of
 * streams in the benchmark's one process, the client must not be what limits the server.
 */
export function subscribeSseRaw(
  endpoint: GraphqlEndpoint,
  query: string,
  variables: Record<string, unknown>,
  onPayload: (json: string, receivedAt: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const body = JSON.stringify({ query, variables });
  return new Promise<void>((resolve, reject) => {
    const request = http.request(
      endpoint.url,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          accept: 'text/event-stream',
          authorization: `Bearer ${endpoint.token}`,
        },
        ...(signal ? { signal } : {}),
      },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`SSE subscribe failed: HTTP ${response.statusCode}`));
          return;
        }
        response.setEncoding('utf8');
        let buffer = '';
        response.on('data', (text: string) => {
          buffer = buffer.length === 0 ? text : buffer + text;
          const receivedAt = Date.now();
          let start = 0;
          let boundary = buffer.indexOf('\n\n', start);
          try {
            while (boundary !== -1) {
              const data = buffer.indexOf('data: ', start);
              if (data !== -1 && data < boundary) onPayload(buffer.slice(data + 6, boundary), receivedAt);
              start = boundary + 2;
              boundary = buffer.indexOf('\n\n', start);
            }
          } catch (error) {
            request.destroy();
            reject(error as Error);
            return;
          }
          buffer = start === buffer.length ? '' : buffer.slice(start);
        });
        response.on('end', () => resolve());
        response.on('error', reject);
      },
    );
    request.on('error', (error) => (signal?.aborted ? resolve() : reject(error)));
    request.end(body);
  });
}

/** The string value of `"field":"..."` in a JSON text, without parsing it all (null if absent). */
export function jsonStringField(json: string, field: string): string | null {
  const key = `"${field}":"`;
  const start = json.indexOf(key);
  if (start === -1) return null;
  const end = json.indexOf('"', start + key.length);
  return end === -1 ? null : json.slice(start + key.length, end);
}
