import { describe, expect, it } from 'vitest';
import { parseBearer } from '../../../src/auth/principal.js';
import { hasRole } from '../../../src/auth/roles.js';
import { randomBytes } from 'node:crypto';
import {
  createTokenService,
  generateApiToken,
  hashApiToken,
  isWellFormedToken,
  secretsEqual,
  TOKEN_CACHE_MAX,
  TOKEN_CACHE_TTL_MS,
  TOKEN_PREFIX,
} from '../../../src/auth/tokens.js';
import type { ControlPlaneDb } from '../../../src/db/control-plane.js';
import { createLogger } from '../../../src/logger.js';
import { capInput, redactInput } from '../../../src/audit/audit-log.js';
import { AUDIT_INPUT_MAX_BYTES } from '../../../src/audit/audit-retention.js';

// The deployment's token signing key (control_plane.token_signing_key in a real database).
const SIGNING_KEY = randomBytes(32);

describe('API tokens', () => {
  it('are cpt_ plus 32 random bytes in base64url plus a keyed check of 6 bytes', () => {
    const token = generateApiToken(SIGNING_KEY);
    expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
    expect(token).toHaveLength(TOKEN_PREFIX.length + 43 + 8);
    expect(Buffer.from(token.slice(TOKEN_PREFIX.length, -8), 'base64url')).toHaveLength(32);
    expect(generateApiToken(SIGNING_KEY)).not.toBe(token);
  });

  it('check themselves: a changed character, another key or a random value fails the check', () => {
    const token = generateApiToken(SIGNING_KEY);
    expect(isWellFormedToken(token, SIGNING_KEY)).toBe(true);
    const flipped = `${token.slice(0, 10)}${token[10] === 'A' ? 'B' : 'A'}${token.slice(11)}`;
    expect(isWellFormedToken(flipped, SIGNING_KEY)).toBe(false);
    expect(isWellFormedToken(token, randomBytes(32))).toBe(false);
    expect(isWellFormedToken(`${TOKEN_PREFIX}${randomBytes(38).toString('base64url')}`, SIGNING_KEY)).toBe(
      false,
    );
    expect(isWellFormedToken('cpt_', SIGNING_KEY)).toBe(false);
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
    apiToken: { findUnique: async () => null, findFirst: async () => null, update: async () => ({}) },
    tokenSigningKey: { findUnique: async () => ({ id: 1, secret: SIGNING_KEY.toString('hex') }) },
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

// An api_tokens table of one row, counting the lookups that reach it.
function fakeTokens(token: string, format = 2) {
  const row = {
    id: 'token-1',
    name: 'ci',
    role: 'OPERATOR',
    tokenHash: hashApiToken(token),
    format,
    revokedAt: null as Date | null,
    lastUsedAt: null as Date | null,
  };
  let lookups = 0;
  let legacyChecks = 0;
  let keyReads = 0;
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
      findFirst: async ({ where }: { where: { format?: number; revokedAt?: null } }) => {
        legacyChecks += 1;
        return where.format === row.format && row.revokedAt === null ? { id: row.id } : null;
      },
      update: async ({ data }: { data: Partial<typeof row> }) => Object.assign(row, data),
    },
    tokenSigningKey: {
      findUnique: async () => {
        keyReads += 1;
        return { id: 1, secret: SIGNING_KEY.toString('hex') };
      },
    },
  } as unknown as ControlPlaneDb;
  return {
    db,
    get lookups() {
      return lookups;
    },
    get legacyChecks() {
      return legacyChecks;
    },
    get keyReads() {
      return keyReads;
    },
    revoke() {
      row.revokedAt = new Date();
    },
    onLookup(fn: () => Promise<void>) {
      beforeLookup = fn;
    },
  };
}

describe('token lookup cache', () => {
  const logger = createLogger('silent');
  const config = { bootstrapAdminToken: null, authDisabled: false };

  it('reuses a lookup for TOKEN_CACHE_TTL_MS, then reads the token again', async () => {
    const token = generateApiToken(SIGNING_KEY);
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
    const token = generateApiToken(SIGNING_KEY);
    const tokens = fakeTokens(token);
    const service = createTokenService({ db: tokens.db, logger, config });
    expect(await service.authenticate(`Bearer ${token}`)).not.toBeNull();
    await service.revokeToken('token-1');
    expect(await service.authenticate(`Bearer ${token}`)).toBeNull();
  });

  it('does not cache a lookup that read the token before a revocation committed', async () => {
    const token = generateApiToken(SIGNING_KEY);
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

describe('token probing', () => {
  const logger = createLogger('silent');
  const config = { bootstrapAdminToken: null, authDisabled: false };

  it('rejects random and malformed cpt_ values without a query', async () => {
    const tokens = fakeTokens(generateApiToken(SIGNING_KEY));
    const service = createTokenService({ db: tokens.db, logger, config });
    const probes = [
      ...Array.from({ length: 200 }, () => `${TOKEN_PREFIX}${randomBytes(38).toString('base64url')}`),
      ...Array.from({ length: 200 }, () => `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`),
      'cpt_',
      'cpt_not-a-real-token-at-all-000000000000',
      `cpt_${'x'.repeat(5000)}`,
    ];
    for (const probe of probes) expect(await service.authenticate(`Bearer ${probe}`)).toBeNull();
    expect(tokens.lookups).toBe(0);
    // The signing key is read once per process; the legacy check once, then never again.
    expect(tokens.keyReads).toBe(1);
    expect(tokens.legacyChecks).toBe(1);
  });

  it('keeps unknown tokens out of the cache of known ones', async () => {
    const token = generateApiToken(SIGNING_KEY);
    const tokens = fakeTokens(token);
    const service = createTokenService({ db: tokens.db, logger, config });
    expect(await service.authenticate(`Bearer ${token}`)).not.toBeNull();
    expect(tokens.lookups).toBe(1);
    // Well-formed tokens nobody holds (signed with the key, never stored): each costs its query,
    // but however many there are, the real token stays cached.
    const flood = 10_001;
    expect(flood).toBeGreaterThan(TOKEN_CACHE_MAX);
    for (let i = 0; i < flood; i++) {
      expect(await service.authenticate(`Bearer ${generateApiToken(SIGNING_KEY)}`)).toBeNull();
    }
    const before = tokens.lookups;
    expect(await service.authenticate(`Bearer ${token}`)).not.toBeNull();
    expect(tokens.lookups).toBe(before);
  });

  it('remembers an unknown token for a while, so repeating it costs no query', async () => {
    const tokens = fakeTokens(generateApiToken(SIGNING_KEY));
    const service = createTokenService({ db: tokens.db, logger, config });
    const unknown = generateApiToken(SIGNING_KEY);
    for (let i = 0; i < 5; i++) expect(await service.authenticate(`Bearer ${unknown}`)).toBeNull();
    expect(tokens.lookups).toBe(1);
  });

  it('accepts a token issued before tokens checked themselves while such tokens are live', async () => {
    const legacy = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const tokens = fakeTokens(legacy, 1);
    let clock = 1_000_000;
    const service = createTokenService({ db: tokens.db, logger, config, now: () => clock });
    expect(await service.authenticate(`Bearer ${legacy}`)).toMatchObject({ tokenId: 'token-1' });
    // Once no live legacy token remains, legacy-shaped values are refused without a query.
    tokens.revoke();
    clock += 10 * 60_000;
    expect(await service.authenticate(`Bearer ${legacy}`)).toBeNull();
    const lookups = tokens.lookups;
    for (let i = 0; i < 50; i++) {
      const probe = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
      expect(await service.authenticate(`Bearer ${probe}`)).toBeNull();
    }
    expect(tokens.lookups).toBe(lookups);
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

describe('audit input cap', () => {
  it('keeps an input that fits whole', () => {
    expect(capInput({ key: 'a', value: [1, 2] })).toEqual({
      value: { key: 'a', value: [1, 2] },
      truncated: false,
    });
  });

  it('stores at most AUDIT_INPUT_MAX_BYTES, escapes and multi-byte characters included', () => {
    for (const filler of ['"', '\\', 'é', '😀', 'x']) {
      const { value, truncated } = capInput({ key: 'k', value: filler.repeat(20_000) });
      expect(truncated).toBe(true);
      expect(typeof value).toBe('string');
      expect(Buffer.byteLength(JSON.stringify(value), 'utf8')).toBeLessThanOrEqual(AUDIT_INPUT_MAX_BYTES);
      expect(Buffer.byteLength(JSON.stringify(value), 'utf8')).toBeGreaterThan(AUDIT_INPUT_MAX_BYTES - 64);
      expect(value as string).not.toContain('\uFFFD');
      expect((value as string).startsWith('{"key":"k"')).toBe(true);
    }
  });

  it('drops NUL, which PostgreSQL jsonb refuses, so such a call is still logged', () => {
    expect(redactInput({ ['a\u0000b']: 'c\u0000d' })).toEqual({ ab: 'cd' });
  });
});
