import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import type { ApiToken } from '../generated/prisma/client.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
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
// Known tokens kept at once. Unknown ones have their own, smaller cache (TOKEN_MISS_CACHE_MAX), so
// a flood of them can neither grow memory nor push real tokens out.
export const TOKEN_CACHE_MAX = 10_000;
// Unknown (mostly revoked) tokens remembered at once, so a stale client repeating one costs no query.
export const TOKEN_MISS_CACHE_MAX = 1_000;
const TOKEN_NAME_MAX = 255;
// A token is `cpt_` + 43 characters (32 random bytes) + 8 characters (6 bytes of HMAC-SHA256 of
// what precedes them under the control plane's token signing key): a value nobody issued fails
// the check in memory, without a control-plane query. 48 bits make a forged check as likely as
// one in 2.8e14, and a hit only buys one query.
const TOKEN_BODY_CHARS = 43;
const TOKEN_CHECK_BYTES = 6;
const TOKEN_CHECK_CHARS = 8;
const TOKEN_SHAPE = new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{${TOKEN_BODY_CHARS + TOKEN_CHECK_CHARS}}$`);
// Tokens issued before the check (format 1, migration 0004): `cpt_` + 43 characters.
const LEGACY_TOKEN_SHAPE = new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{${TOKEN_BODY_CHARS}}$`);
const FORMAT_LEGACY = 1;
// How often a process asks whether a live format-1 token is left, while one is.
const LEGACY_CHECK_INTERVAL_MS = 60_000;

/** A fresh API token: `cpt_` + 32 random bytes + the keyed check of them, all base64url. */
export function generateApiToken(signingKey: Buffer): string {
  const body = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return body + checkOf(body, signingKey);
}

/** Whether `token` has the shape of a current token and carries a valid check under `signingKey`. */
export function isWellFormedToken(token: string, signingKey: Buffer): boolean {
  if (!TOKEN_SHAPE.test(token)) return false;
  const body = token.slice(0, -TOKEN_CHECK_CHARS);
  const expected = Buffer.from(checkOf(body, signingKey));
  const actual = Buffer.from(token.slice(-TOKEN_CHECK_CHARS));
  return timingSafeEqual(expected, actual);
}

function checkOf(body: string, signingKey: Buffer): string {
  return createHmac('sha256', signingKey)
    .update(body, 'utf8')
    .digest()
    .subarray(0, TOKEN_CHECK_BYTES)
    .toString('base64url');
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

// A cached lookup of a known, unrevoked token (unknown ones are in `misses`).
interface CachedLookup {
  readonly principal: Principal;
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
  // control-plane query on the path of every request. Known tokens and unknown ones apart.
  const lookups = new Map<string, CachedLookup>();
  const misses = new Map<string, number>();
  // Read once per process (a failed read is retried by the next request).
  let signingKey: Promise<Buffer> | null = null;
  // Whether a live token of format 1 may exist; once none is left none can come back.
  let legacyTokensLive = true;
  let legacyCheckedAt = -Infinity;
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
    if (!(await mayBeIssued(token))) return null;
    const principal = await lookUp(hashApiToken(token));
    if (principal?.tokenId) touch(principal.tokenId);
    return principal;
  }

  // Whether `token` can be one we issued, decided without a token lookup: a current token by its
  // check, a format-1 token only while live format-1 tokens exist.
  async function mayBeIssued(token: string): Promise<boolean> {
    if (TOKEN_SHAPE.test(token)) return isWellFormedToken(token, await loadSigningKey());
    if (!LEGACY_TOKEN_SHAPE.test(token)) return false;
    return legacyTokensExist();
  }

  function loadSigningKey(): Promise<Buffer> {
    signingKey ??= db.tokenSigningKey.findUnique({ where: { id: 1 } }).then(
      (row) => {
        if (!row)
          throw new Error('control_plane.token_signing_key is empty: run the control-plane migrations');
        return Buffer.from(row.secret, 'hex');
      },
      (error: unknown) => {
        signingKey = null;
        throw error;
      },
    );
    return signingKey;
  }

  async function legacyTokensExist(): Promise<boolean> {
    if (!legacyTokensLive) return false;
    if (now() - legacyCheckedAt < LEGACY_CHECK_INTERVAL_MS) return true;
    legacyCheckedAt = now();
    const live = await db.apiToken.findFirst({
      where: { format: FORMAT_LEGACY, revokedAt: null },
      select: { id: true },
    });
    legacyTokensLive = live !== null;
    return legacyTokensLive;
  }

  async function lookUp(tokenHash: string): Promise<Principal | null> {
    const cached = lookups.get(tokenHash);
    if (cached && cached.expiresAt > now()) return cached.principal;
    const missExpiresAt = misses.get(tokenHash);
    if (missExpiresAt !== undefined && missExpiresAt > now()) return null;
    const seen = revocations;
    const row = await db.apiToken.findUnique({ where: { tokenHash } });
    const principal: Principal | null =
      row && !row.revokedAt ? { kind: 'api-token', name: row.name, role: row.role, tokenId: row.id } : null;
    if (seen !== revocations) return principal;
    const expiresAt = now() + TOKEN_CACHE_TTL_MS;
    if (principal) {
      misses.delete(tokenHash);
      remember(lookups, TOKEN_CACHE_MAX, tokenHash, { principal, expiresAt });
    } else {
      lookups.delete(tokenHash);
      remember(misses, TOKEN_MISS_CACHE_MAX, tokenHash, expiresAt);
    }
    return principal;
  }

  /** Drops the cached lookups of one token (by its id), so a revocation holds from the next request. */
  function forget(tokenId: string): void {
    revocations += 1;
    for (const [tokenHash, cached] of lookups) {
      if (cached.principal.tokenId === tokenId) lookups.delete(tokenHash);
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
    const taken = () => new ConflictError(`An API token named "${name}" already exists`);
    if (await db.apiToken.findUnique({ where: { name }, select: { id: true } })) throw taken();
    const token = generateApiToken(await loadSigningKey());
    try {
      const apiToken = await db.apiToken.create({
        data: { name, role: input.role, tokenHash: hashApiToken(token), createdBy },
      });
      return { token, apiToken };
    } catch (error) {
      // Another request took the name between the check and the insert.
      if (isUniqueViolation(error)) throw taken();
      throw error;
    }
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

// Inserts into a bounded map, evicting its oldest entry when full.
function remember<V>(map: Map<string, V>, max: number, key: string, value: V): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'P2002';
}
