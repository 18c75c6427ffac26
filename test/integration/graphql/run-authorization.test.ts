/**
 * Acting on a run needs the role that starting a run of its kind needs (a ROLLBACK needs ADMIN),
 * and API tokens are visible to ADMIN only, whatever the path to them.
 */
import { encodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, it } from 'vitest';
import type { RunKind, RunStatus, TargetStatus } from '../../../src/generated/prisma/enums.js';
import { expectEventually } from '../../helpers/eventually.js';
import { useApiHarness } from './harness.js';

const RETRY = `mutation ($id: ID!) { retryMigrationRun(input: { id: $id }) { __typename ... on Error { code message } } }`;
const CANCEL = `mutation ($id: ID!) { cancelMigrationRun(input: { id: $id }) { __typename ... on Error { code message } } }`;

describe('authorization of actions on runs', () => {
  // Runs inserted below stay as inserted: the reconciler does not look for them during the file.
  const api = useApiHarness({ RECONCILE_INTERVAL_MS: '3600000' });

  // A provisioned tenant, so the runs below select a real tenant database.
  let tenants = 0;
  async function activeTenant(): Promise<{ tenantId: string; databaseId: string; version: string | null }> {
    const name = api.tenantName(`authz${++tenants}`);
    const created = await api.gql(
      `mutation ($name: String!) { createTenant(input: { name: $name }) {
        ... on CreateTenantSuccess { tenant { tenantId } } } }`,
      { name },
    );
    const tenantId = created.data?.createTenant.tenant.tenantId as string;
    return expectEventually(
      async () => {
        const database = await api.app.db.tenantDatabase.findFirstOrThrow({ where: { tenantId } });
        expect(database.status).toBe('ACTIVE');
        expect(database.schemaVersion).toBe(api.app.catalog.latest);
        return { tenantId, databaseId: database.id, version: database.schemaVersion };
      },
      { timeoutMs: 45_000, intervalMs: 200 },
    );
  }

  async function insertRun(
    tenant: { tenantId: string; databaseId: string },
    kind: RunKind,
    status: RunStatus,
    targetStatus: TargetStatus,
  ): Promise<string> {
    const ended = status === 'CANCELLED';
    const run = await api.app.db.migrationRun.create({
      data: {
        kind,
        status,
        targetVersion: kind === 'ROLLBACK' ? '0' : api.app.catalog.latest,
        concurrency: 1,
        requestedBy: 'bootstrap-admin',
        total: 1,
        pending: targetStatus === 'PENDING' ? 1 : 0,
        cancelled: targetStatus === 'CANCELLED' ? 1 : 0,
        finishedAt: ended ? new Date() : null,
        targets: {
          create: {
            tenantId: tenant.tenantId,
            tenantDatabaseId: tenant.databaseId,
            position: 0,
            status: targetStatus,
            toVersion: kind === 'ROLLBACK' ? '0' : api.app.catalog.latest,
          },
        },
      },
    });
    return encodeGlobalID('MigrationRun', run.id);
  }

  async function stateOf(globalId: string) {
    const id = Buffer.from(globalId, 'base64').toString().split(':')[1] as string;
    const run = await api.app.db.migrationRun.findUniqueOrThrow({
      where: { id },
      include: { targets: true },
    });
    return { status: run.status, finishedAt: run.finishedAt, targets: run.targets.map((t) => t.status) };
  }

  it('refuses an OPERATOR retrying a cancelled ROLLBACK run with FORBIDDEN and changes nothing', async () => {
    const tenant = await activeTenant();
    const runId = await insertRun(tenant, 'ROLLBACK', 'CANCELLED', 'CANCELLED');
    const before = await stateOf(runId);
    const operator = await api.createToken('OPERATOR');

    const result = await api.gql(RETRY, { id: runId }, operator);

    expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await stateOf(runId)).toEqual(before);
    const database = await api.app.db.tenantDatabase.findUniqueOrThrow({ where: { id: tenant.databaseId } });
    expect(database.schemaVersion).toBe(tenant.version);
    const audit = await api.app.db.auditLog.findFirstOrThrow({
      where: { action: 'retryMigrationRun' },
      orderBy: { id: 'desc' },
    });
    expect(audit.outcome).toBe('FORBIDDEN');
  });

  it('refuses an OPERATOR cancelling a ROLLBACK run with FORBIDDEN and changes nothing', async () => {
    const tenant = await activeTenant();
    const runId = await insertRun(tenant, 'ROLLBACK', 'QUEUED', 'PENDING');
    const before = await stateOf(runId);
    const operator = await api.createToken('OPERATOR');

    const result = await api.gql(CANCEL, { id: runId }, operator);

    expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await stateOf(runId)).toEqual(before);
    // An ADMIN may: the rule is per kind, not a blanket refusal.
    const admin = await api.gql(CANCEL, { id: runId });
    expect(admin.data?.cancelMigrationRun.__typename).toBe('CancelMigrationRunSuccess');
    expect((await stateOf(runId)).status).toBe('CANCELLED');
  });

  it('lets an OPERATOR act on a MIGRATE run', async () => {
    const tenant = await activeTenant();
    const runId = await insertRun(tenant, 'MIGRATE', 'QUEUED', 'PENDING');
    const operator = await api.createToken('OPERATOR');
    const result = await api.gql(CANCEL, { id: runId }, operator);
    expect(result.data?.cancelMigrationRun.__typename).toBe('CancelMigrationRunSuccess');
  });

  it('answers NOT_FOUND for an unknown run, whatever the role', async () => {
    const operator = await api.createToken('OPERATOR');
    const missing = encodeGlobalID('MigrationRun', '00000000-0000-4000-8000-000000000000');
    const result = await api.gql(RETRY, { id: missing }, operator);
    expect(result.data?.retryMigrationRun).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });
});

describe('API tokens are ADMIN-only', () => {
  const api = useApiHarness();

  it('hides ApiToken rows from a VIEWER and an OPERATOR through node(id:)', async () => {
    const created = await api.gql(
      `mutation { createApiToken(input: { name: "secret-holder", role: ADMIN }) {
        ... on CreateApiTokenSuccess { apiToken { id } } } }`,
    );
    const id = created.data?.createApiToken.apiToken.id as string;
    for (const role of ['VIEWER', 'OPERATOR'] as const) {
      const token = await api.createToken(role);
      const fields = await api.gql(
        `query ($id: ID!) { node(id: $id) { __typename ... on ApiToken { name role createdBy lastUsedAt } } }`,
        { id },
        token,
      );
      expect(fields.errors?.[0]?.extensions?.code, role).toBe('FORBIDDEN');
      expect(JSON.stringify(fields.data ?? null)).not.toContain('secret-holder');
      const bare = await api.gql(`query ($id: ID!) { node(id: $id) { __typename id } }`, { id }, token);
      expect(bare.errors?.[0]?.extensions?.code, role).toBe('FORBIDDEN');
      expect(bare.data?.node ?? null).toBeNull();
    }
    const admin = await api.gql(`query ($id: ID!) { node(id: $id) { ... on ApiToken { name } } }`, { id });
    expect(admin.data?.node).toEqual({ name: 'secret-holder' });
  });
});
