import type { Plugin } from 'graphql-yoga';

// Content types a browser may POST from any page without a CORS preflight (plus multipart uploads,
// which this API has none of): refused, so a cross-site form can never run a mutation.
const ACCEPTED_POST_TYPES = ['application/json', 'application/graphql-response+json'];

/** Refuses POSTs whose body is not JSON with 415, before any parsing or execution. */
export function useJsonOnly(): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (request.method !== 'POST') return;
      const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (ACCEPTED_POST_TYPES.includes(type)) return;
      endResponse(
        new fetchAPI.Response(
          JSON.stringify({
            errors: [
              {
                message: 'POST bodies must be application/json',
                extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' },
              },
            ],
          }),
          { status: 415, headers: { 'content-type': 'application/json; charset=utf-8' } },
        ),
      );
    },
  };
}
