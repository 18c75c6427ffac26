import type { ApiRole } from './roles.js';

/** Who is calling: an API token, the bootstrap token, or anyone while AUTH_DISABLED. */
export interface Principal {
  /** Recorded as the audit row's actor kind. */
  readonly kind: 'api-token' | 'bootstrap' | 'auth-disabled';
  /** Shown as `viewer.name`, recorded as the actor of audit rows and runs. */
  readonly name: string;
  readonly role: ApiRole;
  /** The api_tokens row, for kind `api-token`: what the audit log records, as names can change hands. */
  readonly tokenId: string | null;
}

/** The bearer token of an `Authorization` header value (`Bearer <token>`), or null. */
export function parseBearer(authorization: string | null | undefined): string | null {
  if (typeof authorization !== 'string') return null;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1] ?? null;
}
