import { describe, expect, it } from 'vitest';
import { parseBearer } from '../../../src/auth/principal.js';
import { hasRole } from '../../../src/auth/roles.js';
import {
  createTokenService,
  generateApiToken,
  hashApiToken,
  secretsEqual,
  TOKEN_CACHE_TTL_MS,
  TOKEN_PREFIX,
} from '../../../src/auth/tokens.js';
import type { ControlPlaneDb } from '../../../src/db/control-plane.js';
import { createLogger } from '../../../src/logger.js';
import { redactInput } from '../../../src/audit/audit-log.js';

describe('API tokens', () => {
  it('are cpt_ plus 32 random bytes in base64url', () => {
    const token = generateApiToken();
    expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
    expect(Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url')).toHaveLength(32);
    expect(generateApiToken()).not.toBe(token);
  });

  it('are stored as SHA-256 hex', () => {
    expect(hashApiToken('cpt_abc')).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiToken('cpt_abc')).toBe(hashApiToken('cpt_abc'));
    expect(hashApiToken('cpt_abc')).not.toBe(hashApiToken('cpt_abd'));
  });

  it('compare secrets of any length', () => {
    expect(secretsEqual('same-secret', 'same-secret')).toBe(true);
    expect(secretsEqual('same-secret', 'same-secreT')).toBe(false);
    expect(secretsEqual('short', 'a much longer value')).toBe(false);
  });
});

describe('Authorization headers', () => {
  it('yield the bearer token', () => {
    expect(parseBearer('Bearer abc')).toBe('abc');
    expect(parseBearer('bearer   abc  ')).toBe('abc');
    expect(parseBearer('Basic abc')).toBeNull();
    expect(parseBearer('Bearer')).toBeNull();
    expect(parseBearer(undefined)).toBeNull();
  });
});

describe('roles', () => {
  it('nest ADMIN ⊃ OPERATOR ⊃ VIEWER', () => {
    expect(hasRole('ADMIN', 'OPERATOR')).toBe(true);
    expect(hasRole('OPERATOR', 'VIEWER')).toBe(true);
    expect(hasRole('OPERATOR', 'ADMIN')).toBe(false);
    expect(hasRole('VIEWER', 'OPERATOR')).toBe(false);
    expect(hasRole(null, 'VIEWER')).toBe(false);
  });
});

describe('authenticate', () => {
  const db = {
    apiToken: { findUnique: async () => null, update: async () => ({}) },
  } as unknown as ControlPlaneDb;
  const logger = createLogger('silent');

  it('treats the bootstrap token as ADMIN and anything unknown as nobody', async () => {
    const service = createTokenService({
      db,
      logger,
      config: { bootstrapAdminToken: 'bootstrap-token-of-length', authDisabled: false },
    });
    expect(await service.authenticate('Bearer bootstrap-token-of-length')).toMatchObject({
      role: 'ADMIN',
      kind: 'bootstrap',
    });
    expect(await service.authenticate('Bearer bootstrap-token-of-lengtX')).toBeNull();
    expect(await service.authenticate('Bearer cpt_unknown')).toBeNull();
    expect(await service.authenticate(null)).toBeNull();
  });

  it('makes every request ADMIN when auth is disabled', async () => {
    const service = createTokenService({
      db,
      logger,
      config: { bootstrapAdminToken: null, authDisabled: true },
    });
    expect(await service.authenticate(null)).toMatchObject({ role: 'ADMIN' });
  });
});

describe('token lookup cache', () => {
  const logger = createLogger('silent');
  const config = { bootstrapAdminToken: null, authDisabled: false };

  // An api_tokens table of one row, counting the lookups that reach it.
  function fakeTokens(token: string) {
    const row = {
      id: 'token-1',
      name: 'ci',
      role: 'OPERATOR',
      tokenHash: hashApiToken(token),
      revokedAt: null as Date | null,
      lastUsedAt: null as Date | null,
    };
    let lookups = 0;
    let beforeLookup: () => Promise<void> = async () => undefined;
    const db = {
      apiToken: {
        findUnique: async ({ where }: { where: { tokenHash?: string; id?: string } }) => {
          if (where.tokenHash !== undefined) {
            lookups += 1;
            const snapshot = { ...row };
            await beforeLookup();
            return where.tokenHash === row.tokenHash ? snapshot : null;
          }
          return where.id === row.id ? { ...row } : null;
        },
        update: async ({ data }: { data: Partial<typeof row> }) => Object.assign(row, data),
      },
    } as unknown as ControlPlaneDb;
    return {
      db,
      get lookups() {
        return lookups;
      },
      onLookup(fn: () => Promise<void>) {
        beforeLookup = fn;
      },
    };
  }

  it('reuses a lookup for TOKEN_CACHE_TTL_MS, then reads the token again', async () => {
    const token = generateApiToken();
    const tokens = fakeTokens(token);
    let clock = 1_000_000;
    const service = createTokenService({ db: tokens.db, logger, config, now: () => clock });
    for (let i = 0; i < 3; i++) {
      expect(await service.authenticate(`Bearer ${token}`)).toMatchObject({
        role: 'OPERATOR',
        tokenId: 'token-1',
      });
    }
    expect(tokens.lookups).toBe(1);
    clock += TOKEN_CACHE_TTL_MS + 1;
    await service.authenticate(`Bearer ${token}`);
    expect(tokens.lookups).toBe(2);
  });

  it('refuses a token from the request after its revocation, though its lookup was cached', async () => {
    const token = generateApiToken();
    const tokens = fakeTokens(token);
    const service = createTokenService({ db: tokens.db, logger, config });
    expect(await service.authenticate(`Bearer ${token}`)).not.toBeNull();
    await service.revokeToken('token-1');
    expect(await service.authenticate(`Bearer ${token}`)).toBeNull();
  });

  it('does not cache a lookup that read the token before a revocation committed', async () => {
    const token = generateApiToken();
    const tokens = fakeTokens(token);
    const service = createTokenService({ db: tokens.db, logger, config });
    // The revocation lands while the lookup is in flight: that request may still pass, the next not.
    tokens.onLookup(async () => {
      tokens.onLookup(async () => undefined);
      await service.revokeToken('token-1');
    });
    await service.authenticate(`Bearer ${token}`);
    expect(await service.authenticate(`Bearer ${token}`)).toBeNull();
    expect(tokens.lookups).toBe(2);
  });
});

describe('audit input redaction', () => {
  it('drops secret-named keys and secret-looking strings', () => {
    expect(
      redactInput({
        name: 'acme',
        token: 'cpt_x',
        nested: { connectionString: 'x', note: 'see postgresql://u:p@h/db', list: [{ password: 'p' }] },
      }),
    ).toEqual({
      name: 'acme',
      token: '[redacted]',
      nested: { connectionString: '[redacted]', note: 'see [redacted]', list: [{ password: '[redacted]' }] },
    });
  });
});
