import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The UUID inside a global id of `typename`, or null when the id is malformed or of another type. */
export function tryDecodeId(globalId: string | number, typename: string): string | null {
  try {
    const { typename: actual, id } = decodeGlobalID(String(globalId));
    return actual === typename && UUID.test(id) ? id.toLowerCase() : null;
  } catch {
    return null;
  }
}

/** Like tryDecodeId, but a malformed id is a GraphQL error (code BAD_USER_INPUT) naming `argument`. */
export function decodeId(globalId: string | number, typename: string, argument = 'id'): string {
  const id = tryDecodeId(globalId, typename);
  if (id === null) {
    throw new GraphQLError(`"${argument}" is not a valid ${typename} id`, {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  return id;
}

/** The global id of a `typename` row. */
export function encodeId(typename: string, id: string): string {
  return encodeGlobalID(typename, id);
}
