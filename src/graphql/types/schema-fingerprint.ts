import type { TenantDatabase } from '../../generated/prisma/client.js';
import type { SchemaDifference } from '../../fingerprints/schema-differences.js';
import { builder } from '../builder.js';

const SchemaDifferenceRef = builder.objectRef<SchemaDifference>('SchemaDifference').implement({
  description: 'One way a structure differs from its expected one, e.g. COLUMN_TYPE users.tenant_id',
  fields: (t) => ({
    kind: t.exposeString('kind'),
    object: t.exposeString('object'),
    expected: t.exposeString('expected', { nullable: true }),
    actual: t.exposeString('actual', { nullable: true }),
  }),
});

type FingerprintRow = Pick<
  TenantDatabase,
  | 'fingerprintHash'
  | 'fingerprintExpectedHash'
  | 'fingerprintMatches'
  | 'fingerprintDifferences'
  | 'fingerprintComputedAt'
>;

interface FingerprintView {
  readonly hash: string;
  readonly expectedHash: string | null;
  readonly matchesExpected: boolean | null;
  readonly computedAt: Date;
  readonly differences: readonly SchemaDifference[];
}

export const SchemaFingerprintRef = builder.objectRef<FingerprintView>('SchemaFingerprint').implement({
  description:
    "The last structure read from a tenant's schema (or database), beside its version's expected one",
  fields: (t) => ({
    hash: t.exposeString('hash', { description: 'SHA-256 of the normalised structure' }),
    expectedHash: t.exposeString('expectedHash', { nullable: true }),
    matchesExpected: t.exposeBoolean('matchesExpected', { nullable: true }),
    computedAt: t.expose('computedAt', { type: 'DateTime' }),
    differences: t.field({ type: [SchemaDifferenceRef], resolve: (fingerprint) => fingerprint.differences }),
  }),
});

/** The tenant_databases columns `fingerprintView` reads. */
export const FINGERPRINT_FIELDS = {
  fingerprintHash: true,
  fingerprintExpectedHash: true,
  fingerprintMatches: true,
  fingerprintDifferences: true,
  fingerprintComputedAt: true,
} as const;

/** The fingerprint columns of a tenant_databases row, as the API shows them (null before the first read). */
export function fingerprintView(row: FingerprintRow): FingerprintView | null {
  if (!row.fingerprintHash || !row.fingerprintComputedAt) return null;
  return {
    hash: row.fingerprintHash,
    expectedHash: row.fingerprintExpectedHash,
    matchesExpected: row.fingerprintMatches,
    computedAt: row.fingerprintComputedAt,
    differences: Array.isArray(row.fingerprintDifferences)
      ? (row.fingerprintDifferences as unknown as SchemaDifference[])
      : [],
  };
}
