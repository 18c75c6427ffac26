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

/**
 * Wraps every Mutation field so each call writes one audit row (actor, mutation, target, input
 * without secrets, outcome), whatever the field's own code does. Requests without a valid token
 * are not recorded: they name no actor and would let anyone fill the log.
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
      if (context.principal) {
        await context.services.audit.record({
          actor: context.principal.name,
          action,
          targetType,
          targetId: targetIdOf(result, input, targetType),
          input,
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
