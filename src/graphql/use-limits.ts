import { EnvelopArmor } from '@escape.tech/graphql-armor';
import type { GraphQLArmorRejectCallback } from '@escape.tech/graphql-armor-types';
import { createComplexityRule } from '@pothos/plugin-complexity';
import {
  GraphQLError,
  Kind,
  validate,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphqlLimits } from '../config.js';
import type { GraphqlContext } from './context.js';

export interface LimitsOptions {
  readonly limits: GraphqlLimits;
  /** Who an `Authorization` header value names, or null: field suggestions are kept for callers only. */
  readonly authenticate: (authorization: string | null) => Promise<unknown>;
}

/**
 * The limits every operation meets before it runs, over HTTP, SSE and WebSocket alike: tokens
 * (while parsing), aliases, depth and directives (GraphQL Armor, while validating), cost (the
 * fields' costs from ./cost.ts with the request's variables, before execution), introspection
 * only for authenticated callers, and no field suggestions for unauthenticated ones. Each refusal
 * is one GraphQL error whose `extensions.code` names the limit.
 */
export function useLimits({ limits, authenticate }: LimitsOptions): Plugin {
  const armor = new EnvelopArmor({
    maxTokens: { n: limits.maxTokens, onReject: [throwAs('QUERY_TOKENS', limits.maxTokens)] },
    maxAliases: {
      n: limits.maxAliases,
      propagateOnRejection: false,
      onReject: [reportAs('QUERY_ALIASES', limits.maxAliases)],
    },
    maxDepth: {
      n: limits.maxDepth,
      propagateOnRejection: false,
      onReject: [reportAs('QUERY_DEPTH', limits.maxDepth)],
    },
    maxDirectives: {
      n: limits.maxDirectives,
      propagateOnRejection: false,
      onReject: [reportAs('QUERY_DIRECTIVES', limits.maxDirectives)],
    },
    // Cost comes from the fields' own costs (checkCost below), which know that a tenant-database
    // read is dearer than a column and read page sizes from variables.
    costLimit: { enabled: false },
    // Done below per caller; Armor's version rewrites the (cached) validation errors in place.
    blockFieldSuggestion: { enabled: false },
  });

  function stopIfRefused(args: ExecutionArgs, stop: (result: ExecutionResult) => void): void {
    const context = args.contextValue as Partial<GraphqlContext>;
    if (!context.principal && selectsIntrospection(args.document)) {
      stop({ errors: [introspectionRefused()] });
      return;
    }
    const errors = checkCost(args, limits.maxCost);
    if (errors.length > 0) stop({ errors });
  }

  return {
    onPluginInit({ addPlugin }) {
      // Armor's plugins are plain envelop plugins: they use no part of yoga's context.
      for (const plugin of armor.protect().plugins) addPlugin(plugin as Plugin);
    },
    onExecute({ args, setResultAndStopExecution }) {
      stopIfRefused(args, setResultAndStopExecution);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      stopIfRefused(args, setResultAndStopExecution);
    },
    // After yoga's validation cache, so one caller's masked errors are never served to another.
    async onResultProcess({ request, result, setResult }) {
      if (!hasSuggestions(result)) return;
      if (await authenticate(request.headers.get('authorization'))) return;
      setResult({ ...result, errors: result.errors.map(withoutSuggestion) });
    },
  };
}

// Armor prefixes its messages with "Syntax Error: " although the document parsed.
function limitMessage(error: GraphQLError): string {
  return error.message.replace(/^Syntax Error: /, '');
}

function limitError(code: string, max: number, error: GraphQLError): GraphQLError {
  return new GraphQLError(limitMessage(error), { extensions: { code, limit: max } });
}

function reportAs(code: string, max: number): GraphQLArmorRejectCallback {
  return (context, error) => context?.reportError(limitError(code, max, error));
}

// The token limit is checked while parsing, where there is no validation context to report to.
function throwAs(code: string, max: number): GraphQLArmorRejectCallback {
  return (_context, error) => {
    throw limitError(code, max, error);
  };
}

/** The operation's cost against `maxCost`, as one QUERY_COMPLEXITY error when over. */
function checkCost(args: ExecutionArgs, maxCost: number): readonly GraphQLError[] {
  const rule = createComplexityRule({
    context: args.contextValue as object,
    variableValues: (args.variableValues ?? {}) as Record<string, unknown>,
    operationName: args.operationName ?? null,
    maxComplexity: maxCost,
  });
  return validate(args.schema, args.document, [rule]);
}

function selectsIntrospection(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    [Kind.FIELD]: (node) => {
      if (node.name.value === '__schema' || node.name.value === '__type') found = true;
    },
  });
  return found;
}

function introspectionRefused(): GraphQLError {
  return new GraphQLError(
    'Introspection requires authentication: send a valid API token as "Authorization: Bearer <token>"',
    { extensions: { code: 'UNAUTHENTICATED' } },
  );
}

const SUGGESTION = / ?Did you mean .+\?/;

function hasSuggestions(result: unknown): result is ExecutionResult & { errors: readonly GraphQLError[] } {
  const errors = (result as ExecutionResult | null)?.errors;
  return Array.isArray(errors) && errors.some((error) => SUGGESTION.test(error.message));
}

function withoutSuggestion(error: GraphQLError): GraphQLError {
  if (!SUGGESTION.test(error.message)) return error;
  return new GraphQLError(error.message.replace(SUGGESTION, '').trim(), {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  });
}
