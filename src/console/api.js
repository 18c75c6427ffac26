// The console's only way to the service: GraphQL over same-origin fetch, subscriptions over SSE.
// fetch with a ReadableStream (not EventSource) so the Authorization header can be sent.

const TOKEN_KEY = 'tcp-console-token';

/** The signed-in token, kept in sessionStorage: gone with the tab, never in a URL or cookie. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** A failed API call: `code` is the GraphQL error code (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, …). */
export class ApiError extends Error {
  constructor(message, code, errors = []) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.errors = errors;
  }
}

function headers(accept) {
  const result = { 'content-type': 'application/json', accept };
  const token = session.token;
  if (token) result.authorization = `Bearer ${token}`;
  return result;
}

/** Runs a query or mutation and returns its data; GraphQL errors become an ApiError. */
export async function gql(query, variables = {}, { signal } = {}) {
  // application/json (not graphql-response+json): errors come back as 200 with an errors list.
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: headers('application/json'),
    body: JSON.stringify({ query, variables }),
    signal,
  });
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    throw new ApiError(`The API answered ${response.status} without JSON`, 'HTTP_ERROR', [error]);
  }
  if (body.errors?.length) {
    const first = body.errors[0];
    throw new ApiError(first.message, first.extensions?.code ?? 'GRAPHQL_ERROR', body.errors);
  }
  return body.data;
}

/** The success member of a mutation's result union, or an ApiError carrying the error member's code. */
export function unwrap(result) {
  if (result && typeof result.__typename === 'string' && result.__typename.endsWith('Success')) return result;
  throw new ApiError(result?.message ?? 'Unexpected result', result?.code ?? 'UNKNOWN');
}

/** Whether `error` says the schema lacks a field: the feature is not deployed (yet). */
export function isMissingField(error) {
  return error instanceof ApiError && error.errors.some((e) => /^Cannot query field/.test(e?.message ?? ''));
}

/**
 * Streams a subscription over SSE, calling `onData` with each result's data. Resolves when the
 * server completes the stream, rejects on an error or when `signal` aborts.
 */
export async function subscribe(query, variables, onData, { signal } = {}) {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: headers('text/event-stream'),
    body: JSON.stringify({ query, variables }),
    signal,
  });
  if (!response.ok || !response.body)
    throw new ApiError(`The event stream answered ${response.status}`, 'HTTP_ERROR');
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (event === 'complete') return;
        if (data.length === 0 || data.join('') === '') continue;
        const payload = JSON.parse(data.join('\n'));
        if (payload.errors?.length) {
          const first = payload.errors[0];
          throw new ApiError(first.message, first.extensions?.code ?? 'GRAPHQL_ERROR', payload.errors);
        }
        if (payload.data) onData(payload.data);
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/** Whether `error` only says the caller went away (navigation aborted the request). */
export function isAbort(error) {
  return error?.name === 'AbortError';
}
