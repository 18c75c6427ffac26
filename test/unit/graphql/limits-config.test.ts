import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { ConfigError } from '../../../src/errors.js';
import { checkPageArgs } from '../../../src/graphql/ids.js';
import { escapeLikePattern } from '../../../src/graphql/types/tenant.js';

describe('the GraphQL limits settings', () => {
  it('have safe defaults', () => {
    const config = loadConfig({});
    expect(config.graphqlLimits).toEqual({
      maxAliases: 15,
      maxDepth: 10,
      maxTokens: 1000,
      maxDirectives: 50,
      maxCost: 5000,
    });
    expect(config.tenantReadTimeoutMs).toBe(3000);
    expect(config.metricsToken).toBeNull();
  });

  it('read each limit from its variable', () => {
    const config = loadConfig({
      GRAPHQL_MAX_ALIASES: '3',
      GRAPHQL_MAX_DEPTH: '4',
      GRAPHQL_MAX_TOKENS: '500',
      GRAPHQL_MAX_DIRECTIVES: '6',
      GRAPHQL_MAX_COST: '700',
      TENANT_READ_TIMEOUT_MS: '800',
      METRICS_TOKEN: 'scraper-token-0123456789',
    });
    expect(config.graphqlLimits).toEqual({
      maxAliases: 3,
      maxDepth: 4,
      maxTokens: 500,
      maxDirectives: 6,
      maxCost: 700,
    });
    expect(config.tenantReadTimeoutMs).toBe(800);
    expect(config.metricsToken).toBe('scraper-token-0123456789');
  });

  it.each([
    ['GRAPHQL_MAX_ALIASES', '0'],
    ['GRAPHQL_MAX_COST', 'lots'],
    ['TENANT_READ_TIMEOUT_MS', '-1'],
    ['METRICS_TOKEN', 'short'],
  ])('refuse %s=%s with one line naming the variable', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^Invalid ${variable}:`));
  });
});

describe('checkPageArgs', () => {
  it('names the maximum of a page size over it, and accepts one at it', () => {
    expect(() => checkPageArgs({ first: 101 }, 100)).toThrow(
      'Argument "first" must be at most 100 (got 101)',
    );
    expect(() => checkPageArgs({ last: -1 }, 100)).toThrow('Argument "last" must not be negative');
    expect(() => checkPageArgs({ first: 100 }, 100)).not.toThrow();
  });

  it('accepts a cursor around a UUID only', () => {
    const cursor = (value: string) => Buffer.from(`GPC:S:${value}`).toString('base64');
    expect(() => checkPageArgs({ after: cursor('6f1c7c52-1d3f-4a61-9a53-8f0a5f2f4c11') }, 10)).not.toThrow();
    expect(() => checkPageArgs({ after: cursor('1; DROP TABLE x') }, 10)).toThrow('Argument "after"');
    expect(() => checkPageArgs({ before: 'not base64 at all' }, 10)).toThrow('Argument "before"');
  });
});

describe('escapeLikePattern', () => {
  it('escapes the LIKE wildcards and the escape character', () => {
    expect(escapeLikePattern('a%b_c\\d')).toBe('a\\%b\\_c\\\\d');
    expect(escapeLikePattern('plain-name')).toBe('plain-name');
  });
});
