import { GraphQLError, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { AppError } from '../errors.js';
import type { GraphqlContext } from './context.js';
import { tryDecodeId } from './ids.js';

// What each mutation acts on, for the audit row's target_type.
const TARGET_TYPES: Readonly<Record<string, string>> = {
  createTenant: 'Tenant',
  updateTenant: 'Tenant',
  setTenantStatus: 'Tenant',
  deleteTenant: 'Tenant',
  stampTenant: 'Tenant',
  startMigrationRun: 'MigrationRun',
  startRollback: 'MigrationRun',
  cancelMigrationRun: 'MigrationRun',
  retryMigrationRun: 'MigrationRun',
  setSystemConfig: 'SystemConfig',
  deleteSystemConfig: 'SystemConfig',
  createApiToken: 'ApiToken',
  revokeApiToken: 'ApiToken',
};

// Outcomes of a call refused before it ran: recorded without its input, which nobody was
// allowed to send (a refused 5 MB input used to be stored whole).
const DENIED_OUTCOMES = new Set(['FORBIDDEN', 'UNAUTHENTICATED']);

/**
 * Wraps every Mutation field so each call writes one audit row (actor with its token id and kind,
 * mutation, target, input without secrets and capped, outcome), whatever the field's own code
 * does. Requests without a valid token are not recorded: they name no actor and would let anyone
 * fill the log.
 */
export function auditMutations(schema: GraphQLSchema): GraphQLSchema {
  const mutation = schema.getMutationType();
  if (!mutation) return schema;
  for (const field of Object.values(mutation.getFields())) {
    const resolve = field.resolve;
    if (!resolve) continue;
    field.resolve = audited(field.name, resolve as GraphQLFieldResolver<unknown, GraphqlContext>);
  }
  return schema;
}

function audited(
  action: string,
  resolve: GraphQLFieldResolver<unknown, GraphqlContext>,
): GraphQLFieldResolver<unknown, GraphqlContext> {
  const targetType = TARGET_TYPES[action] ?? null;
  return async (root, args, context, info) => {
    const input = (args as { input?: Record<string, unknown> }).input;
    let outcome = 'success';
    let error: string | null = null;
    let result: unknown;
    try {
      result = await resolve(root, args, context, info);
      if (isErrorResult(result)) {
        outcome = codeOf(result);
        error = result.message;
      }
      return result;
    } catch (thrown) {
      outcome = codeOf(thrown);
      error = thrown instanceof Error ? thrown.message : String(thrown);
      throw thrown;
    } finally {
      const principal = context.principal;
      if (principal) {
        const denied = DENIED_OUTCOMES.has(outcome);
        await context.services.audit.record({
          actor: principal.name,
          actorKind: principal.kind,
          actorTokenId: principal.tokenId,
          action,
          targetType,
          targetId: denied ? null : targetIdOf(result, input, targetType),
          ...(denied ? {} : { input }),
          outcome,
          error,
        });
      }
    }
  };
}

// plugin-errors hands back expected errors wrapped in a Proxy that hides their prototype chain,
// so they are recognised by shape.
function isErrorResult(value: unknown): value is { code: string; message: string } {
  if (value instanceof Error) return true;
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { code?: unknown; message?: unknown; name?: unknown };
  return (
    typeof candidate.code === 'string' &&
    typeof candidate.message === 'string' &&
    typeof candidate.name === 'string'
  );
}

function codeOf(error: unknown): string {
  if (error instanceof AppError) return error.code;
  if (isErrorResult(error) && !(error instanceof Error)) return error.code;
  if (error instanceof GraphQLError && typeof error.extensions.code === 'string')
    return error.extensions.code;
  return 'INTERNAL';
}

function targetIdOf(
  result: unknown,
  input: Record<string, unknown> | undefined,
  targetType: string | null,
): string | null {
  if (result && typeof result === 'object' && !isErrorResult(result)) {
    const payload = result as Record<string, unknown>;
    for (const key of ['tenantId', 'runId', 'apiTokenId', 'key']) {
      if (typeof payload[key] === 'string') return payload[key];
    }
    const config = payload.config as { key?: unknown } | undefined;
    if (typeof config?.key === 'string') return config.key;
  }
  if (!input) return null;
  if (typeof input.key === 'string') return input.key;
  const globalId = input.id ?? input.tenantId;
  if ((typeof globalId === 'string' || typeof globalId === 'number') && targetType) {
    return tryDecodeId(globalId, targetType) ?? String(globalId);
  }
  return null;
}
