import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import type { ApiToken } from '../generated/prisma/client.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseBearer, type Principal } from './principal.js';
import { isApiRole, type ApiRole } from './roles.js';

/** Every issued token starts with this, so leaked tokens are easy to spot and to redact. */
export const TOKEN_PREFIX = 'cpt_';
// Writing last_used_at on every request would turn each read into a write; once a minute is enough.
const LAST_USED_THROTTLE_MS = 60_000;
// How long a token lookup is reused. Revoking through this process takes effect at once; another
// API process still accepts the revoked token for at most this long.
export const TOKEN_CACHE_TTL_MS = 5_000;
// Lookups kept at once (unknown tokens included, so a flood of them cannot grow memory without bound).
const TOKEN_CACHE_MAX = 10_000;
const TOKEN_NAME_MAX = 255;

/** A fresh API token: `cpt_` + 32 random bytes, base64url. */
export function generateApiToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** SHA-256 hex of a token: the only form ever stored. */
export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares two secrets in constant time (for equal-length digests). */
export function secretsEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right);
}

export interface TokenServiceDeps {
  readonly db: ControlPlaneDb;
  readonly config: Pick<Config, 'bootstrapAdminToken' | 'authDisabled'>;
  readonly logger: Logger;
  /** The clock of the lookup cache (tests move it). */
  readonly now?: () => number;
  /** Told after a token is revoked (ends its open streams in every API process). */
  readonly onRevoked?: (tokenId: string) => Promise<void>;
}

// A cached lookup: the token's principal, or null for an unknown or revoked token.
interface CachedLookup {
  readonly principal: Principal | null;
  readonly expiresAt: number;
}

export interface CreatedApiToken {
  /** The token value, shown once and never stored. */
  readonly token: string;
  readonly apiToken: ApiToken;
}

/** API tokens: authenticating requests, issuing and revoking tokens. */
export function createTokenService({ db, config, logger, now = Date.now, onRevoked }: TokenServiceDeps) {
  const lastUsedWrites = new Map<string, number>();
  // By token hash. Every request of a client carries the same token, and each lookup was a
  // control-plane query on the path of every request.
  const lookups = new Map<string, CachedLookup>();
  // Counts revocations, so a lookup that read the row before a revocation does not cache it after.
  let revocations = 0;

  /** The principal of an `Authorization` header value; null when missing, unknown or revoked. */
  async function authenticate(authorization: string | null | undefined): Promise<Principal | null> {
    if (config.authDisabled)
      return { kind: 'auth-disabled', name: 'auth-disabled', role: 'ADMIN', tokenId: null };
    const token = parseBearer(authorization);
    if (!token) return null;
    if (config.bootstrapAdminToken && secretsEqual(token, config.bootstrapAdminToken)) {
      return { kind: 'bootstrap', name: 'bootstrap-admin', role: 'ADMIN', tokenId: null };
    }
    if (!token.startsWith(TOKEN_PREFIX)) return null;
    const principal = await lookUp(hashApiToken(token));
    if (principal?.tokenId) touch(principal.tokenId);
    return principal;
  }

  async function lookUp(tokenHash: string): Promise<Principal | null> {
    const cached = lookups.get(tokenHash);
    if (cached && cached.expiresAt > now()) return cached.principal;
    const seen = revocations;
    const row = await db.apiToken.findUnique({ where: { tokenHash } });
    const principal: Principal | null =
      row && !row.revokedAt ? { kind: 'token', name: row.name, role: row.role, tokenId: row.id } : null;
    if (seen !== revocations) return principal;
    lookups.delete(tokenHash);
    if (lookups.size >= TOKEN_CACHE_MAX) lookups.delete(lookups.keys().next().value as string);
    lookups.set(tokenHash, { principal, expiresAt: now() + TOKEN_CACHE_TTL_MS });
    return principal;
  }

  /** Drops the cached lookups of one token (by its id), so a revocation holds from the next request. */
  function forget(tokenId: string): void {
    revocations += 1;
    for (const [tokenHash, cached] of lookups) {
      if (cached.principal?.tokenId === tokenId) lookups.delete(tokenHash);
    }
  }

  /** Issues a token; the value is returned here once and only its hash is stored. */
  async function createToken(
    input: { name: string; role: ApiRole },
    createdBy: string,
  ): Promise<CreatedApiToken> {
    const name = input.name.trim();
    if (name.length === 0 || name.length > TOKEN_NAME_MAX) {
      throw new ValidationError(`Token name must be 1-${TOKEN_NAME_MAX} characters`, 'name');
    }
    if (!isApiRole(input.role)) throw new ValidationError('Unknown role', 'role');
    const token = generateApiToken();
    const apiToken = await db.apiToken.create({
      data: { name, role: input.role, tokenHash: hashApiToken(token), createdBy },
    });
    return { token, apiToken };
  }

  /** Marks a token revoked; requests with it fail from now on. Revoking twice keeps the first time. */
  async function revokeToken(id: string): Promise<ApiToken> {
    const existing = await db.apiToken.findUnique({ where: { id } });
    if (!existing) throw new NotFoundError('API token not found');
    if (existing.revokedAt) return existing;
    const revoked = await db.apiToken.update({ where: { id }, data: { revokedAt: new Date() } });
    forget(id);
    await onRevoked?.(id);
    return revoked;
  }

  function touch(tokenId: string): void {
    const now = Date.now();
    const last = lastUsedWrites.get(tokenId) ?? 0;
    if (now - last < LAST_USED_THROTTLE_MS) return;
    lastUsedWrites.set(tokenId, now);
    db.apiToken
      .update({ where: { id: tokenId }, data: { lastUsedAt: new Date(now) } })
      .catch((error: unknown) => {
        logger.warn('could not record token use', { tokenId, error });
      });
  }

  return { authenticate, createToken, revokeToken, forget };
}
export type TokenService = ReturnType<typeof createTokenService>;
