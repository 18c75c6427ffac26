/**
 * What a field costs in the query-cost limit (`GRAPHQL_MAX_COST`), read by @pothos/plugin-complexity.
 * Every field costs 1 and a list multiplies its selection by 10 unless it says otherwise here.
 */

/**
 * A field that reads the tenant's own database (its ledger) costs a round trip to a tenant server
 * for every tenant listed, against one shared control-plane statement for a plain column: at the
 * default limit of 5000, one operation reads at most about 200 tenant databases.
 */
export const TENANT_DATABASE_READ_COST = 25;

/** The cost of a field that reads the tenant's own database; its items are in memory once read. */
export const TENANT_DATABASE_READ = { field: TENANT_DATABASE_READ_COST, multiplier: 1 } as const;

/** A list whose items come with its parent's query and are few (a tenant's databases). */
export const SMALL_LIST = { field: 1, multiplier: 1 } as const;

/** The cost of a connection: its selection counts once per row the page can hold. */
export function connectionCost(defaultSize: number, maxSize: number) {
  return (args: { first?: number | null; last?: number | null }) => ({
    field: 1,
    // Clamped: a size over the maximum is refused with a validation error when the field runs.
    multiplier: Math.min(Math.max(args.first ?? args.last ?? defaultSize, 0), maxSize),
  });
}
