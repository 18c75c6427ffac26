import { decodeGlobalID } from '@pothos/plugin-relay';
import { parsePrismaCursor } from '@pothos/plugin-prisma';
import { ValidationError } from '../errors.js';

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

/** The paging arguments of a connection. */
export interface PageArgs {
  readonly first?: number | null;
  readonly last?: number | null;
  readonly after?: string | null;
  readonly before?: string | null;
}

/**
 * A `maxSize` for a Prisma connection keyed by a UUID column. Pothos calls it before it reads the
 * cursor or queries, so a page over `max` is refused (naming the maximum) instead of cut, and a
 * cursor that holds no UUID is refused instead of reaching the database as a masked error.
 */
export function checkedPageSize(max: number): (args: PageArgs) => number {
  return (args) => {
    checkPageArgs(args, max);
    return max;
  };
}

/** Throws ValidationError when a page size is negative or over `max`, or a cursor holds no UUID. */
export function checkPageArgs(args: PageArgs, max: number): void {
  for (const name of ['first', 'last'] as const) {
    const size = args[name];
    if (size == null) continue;
    if (size < 0) throw new ValidationError(`Argument "${name}" must not be negative`, name);
    if (size > max) {
      throw new ValidationError(`Argument "${name}" must be at most ${max} (got ${size})`, name);
    }
  }
  for (const name of ['after', 'before'] as const) {
    const cursor = args[name];
    if (cursor != null && !isUuidCursor(cursor)) {
      throw new ValidationError(
        `Argument "${name}" is not a cursor of this list: pass an endCursor or a cursor from its edges`,
        name,
      );
    }
  }
}

function isUuidCursor(cursor: string): boolean {
  try {
    const value = parsePrismaCursor(cursor);
    return typeof value === 'string' && UUID.test(value);
  } catch {
    return false;
  }
}
