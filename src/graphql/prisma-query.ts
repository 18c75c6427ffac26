import type { Actor } from '../runs/types.js';
import type { GraphqlContext } from './context.js';

/**
 * Pothos may hand a resolver `select: {}` when a client selects only error members of a result
 * union; Prisma 7 rejects an empty select, so drop it and let Prisma load the whole row.
 */
export function cleanQuery<Q extends object>(query: Q): Q {
  const select = (query as { select?: unknown }).select;
  if (select && typeof select === 'object' && Object.keys(select).length === 0) {
    const { select: _drop, ...rest } = query as Q & { select?: unknown };
    return rest as Q;
  }
  return query;
}

/** Who is asking, as the run machinery and the audit log record it. */
export function actorOf(context: Pick<GraphqlContext, 'principal'>): Actor {
  return { name: context.principal?.name ?? 'anonymous' };
}
