import { decodeGlobalID } from '@pothos/plugin-relay';

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
