/** Minimal GraphQL-over-HTTP and GraphQL-over-SSE clients for the benchmarks (Node's fetch). */
export interface GraphqlEndpoint {
  readonly url: string;
  readonly token: string;
}

/** Runs one operation; throws on transport or GraphQL errors. */
export async function gql<T = Record<string, unknown>>(
  endpoint: GraphqlEndpoint,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const response = await fetch(endpoint.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${endpoint.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(`GraphQL error: ${body.errors.map((e) => e.message).join('; ')}`);
  if (!body.data) throw new Error(`GraphQL response without data (HTTP ${response.status})`);
  return body.data;
}

/**
 * Subscribes over Server-Sent Events and calls `onEvent` with each payload's `data`; resolves
 * when the server ends the stream (or `signal` aborts).
 */
export async function subscribeSse(
  endpoint: GraphqlEndpoint,
  query: string,
  variables: Record<string, unknown>,
  onEvent: (data: Record<string, unknown>, receivedAt: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const response = await fetch(endpoint.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      authorization: `Bearer ${endpoint.token}`,
    },
    body: JSON.stringify({ query, variables }),
    signal: signal ?? null,
  });
  if (!response.ok || !response.body) throw new Error(`SSE subscribe failed: HTTP ${response.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let boundary = buffer.indexOf('\n\n');
    while (boundary !== -1) {
      const message = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const receivedAt = Date.now();
      const data = message
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
        .join('\n');
      if (data) {
        const payload = JSON.parse(data) as {
          data?: Record<string, unknown>;
          errors?: { message: string }[];
        };
        if (payload.errors?.length) throw new Error(`Subscription error: ${payload.errors[0]?.message}`);
        if (payload.data) onEvent(payload.data, receivedAt);
      }
      boundary = buffer.indexOf('\n\n');
    }
  }
}
