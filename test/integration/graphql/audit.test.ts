/**
 * The audit log: who did it (token id and kind, not a name anyone can reuse), denied calls
 * without their input, audited inputs capped, and old rows pruned.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { AUDIT_INPUT_MAX_BYTES, pruneAuditLog } from '../../../src/audit/audit-retention.js';
import { createControlPlaneDb, type ControlPlaneDb } from '../../../src/db/control-plane.js';
import { tryDecodeId } from '../../../src/graphql/ids.js';
import { useTestDatabase } from '../../helpers/database.js';
import { expectEventually } from '../../helpers/eventually.js';
import { useApiHarness } from './harness.js';

const SET_CONFIG = `mutation ($input: SetSystemConfigInput!) {
  setSystemConfig(input: $input) { __typename ... on Error { code } } }`;
const CREATE_TOKEN = `mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) {
  __typename ... on CreateApiTokenSuccess { token apiToken { id } } ... on Error { code message } } }`;
const DAY_MS = 86_400_000;

describe('the audit log', () => {
  const api = useApiHarness({ AUDIT_RETENTION_DAYS: '30', AUDIT_PRUNE_INTERVAL_MS: '1000' });

  async function lastAudit(action: string) {
    return api.app.db.auditLog.findFirstOrThrow({ where: { action }, orderBy: { id: 'desc' } });
  }

  it('records the token id and kind of the caller, not only a name', async () => {
    const created = await api.gql(CREATE_TOKEN, { input: { name: 'deployer', role: 'OPERATOR' } });
    const { token, apiToken } = created.data?.createApiToken as { token: string; apiToken: { id: string } };
    const tokenId = tryDecodeId(apiToken.id, 'ApiToken');

    const byBootstrap = await lastAudit('createApiToken');
    expect(byBootstrap).toMatchObject({ actorKind: 'bootstrap', actorTokenId: null, outcome: 'success' });

    await api.gql(SET_CONFIG, { input: { key: 'audit.identity', value: 1 } }, token);
    expect(await lastAudit('setSystemConfig')).toMatchObject({
      actor: 'deployer',
      actorKind: 'api-token',
      actorTokenId: tokenId,
      outcome: 'success',
    });
  });

  it('refuses a second token of a taken name with ConflictError and creates nothing', async () => {
    const first = await api.gql(CREATE_TOKEN, { input: { name: 'ci', role: 'VIEWER' } });
    expect(first.data?.createApiToken.__typename).toBe('CreateApiTokenSuccess');
    const second = await api.gql(CREATE_TOKEN, { input: { name: 'ci', role: 'ADMIN' } });
    expect(second.data?.createApiToken).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(second.data?.createApiToken.message).toContain('"ci"');
    const padded = await api.gql(CREATE_TOKEN, { input: { name: '  ci ', role: 'ADMIN' } });
    expect(padded.data?.createApiToken.__typename).toBe('ConflictError');
    expect(await api.app.db.apiToken.findMany({ where: { name: 'ci' }, select: { role: true } })).toEqual([
      { role: 'VIEWER' },
    ]);
  });

  it('audits a denied mutation with its outcome only, not its input', async () => {
    const viewer = await api.createToken('VIEWER');
    const huge = 'x'.repeat(5 * 1024 * 1024);
    const result = await api.gql(SET_CONFIG, { input: { key: 'flood', value: huge } }, viewer);
    expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await api.app.db.systemConfig.count({ where: { key: 'flood' } })).toBe(0);
    const row = await lastAudit('setSystemConfig');
    expect(row).toMatchObject({ outcome: 'FORBIDDEN', actorKind: 'api-token', input: null });
    expect(row.actorTokenId).toEqual(expect.any(String));
  });

  it('caps an audited input at AUDIT_INPUT_MAX_BYTES and marks it as cut', async () => {
    const big = 'y'.repeat(100_000);
    const result = await api.gql(SET_CONFIG, { input: { key: 'big.value', value: big } });
    expect(result.data?.setSystemConfig.__typename).toBe('SetSystemConfigSuccess');
    const row = await lastAudit('setSystemConfig');
    expect(row.inputTruncated).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(row.input))).toBeLessThanOrEqual(AUDIT_INPUT_MAX_BYTES + 64);
    expect(JSON.stringify(row.input)).toContain('big.value');

    await api.gql(SET_CONFIG, { input: { key: 'small.value', value: { a: 1 } } });
    const small = await lastAudit('setSystemConfig');
    expect(small).toMatchObject({ inputTruncated: false, input: { key: 'small.value', value: { a: 1 } } });
  });

  it('prunes rows older than AUDIT_RETENTION_DAYS on its own and keeps the rest', async () => {
    const old = new Date(Date.now() - 40 * DAY_MS);
    const recent = new Date(Date.now() - 2 * DAY_MS);
    await api.app.db.auditLog.createMany({
      data: [
        ...Array.from({ length: 3 }, () => ({
          at: old,
          actor: 'old',
          action: 'ancient',
          outcome: 'success',
        })),
        { at: recent, actor: 'recent', action: 'ancient', outcome: 'success' },
      ],
    });
    await expectEventually(
      async () => {
        const left = await api.app.db.auditLog.findMany({ where: { action: 'ancient' } });
        expect(left.map((row) => row.actor)).toEqual(['recent']);
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
  });
});

describe('pruneAuditLog', () => {
  // No app here: nothing else prunes this database while the test looks.
  const database = useTestDatabase({ controlPlane: true });
  let client: ControlPlaneDb | undefined;
  const db = () => (client ??= createControlPlaneDb(database.url));
  afterAll(async () => {
    await client?.$disconnect();
  });

  it('prunes in batches until no expired row is left', async () => {
    const old = new Date(Date.now() - 400 * DAY_MS);
    await db().auditLog.createMany({
      data: Array.from({ length: 7 }, () => ({ at: old, actor: 'batch', action: 'batched', outcome: 'x' })),
    });
    const deleted = await pruneAuditLog(db(), {
      olderThan: new Date(Date.now() - 300 * DAY_MS),
      batchSize: 2,
    });
    expect(deleted).toBe(7);
    expect(await db().auditLog.count({ where: { action: 'batched' } })).toBe(0);
  });
});
