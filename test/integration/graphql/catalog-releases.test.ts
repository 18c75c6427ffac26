import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { snapshotCatalog } from '../../../src/catalog-releases/release-snapshot.js';
import { waitForRunEnd } from '../runs/run-assertions.js';
import { useApiHarness } from './harness.js';

const ROLLING = path.resolve(import.meta.dirname, '../../fixtures/runs/rolling');

describe('catalog releases over GraphQL', () => {
  const api = useApiHarness({ MIGRATIONS_DIR: ROLLING });

  it('lists the API release with its migrations, and a run names the release it executes', async () => {
    const checksum = snapshotCatalog(api.app.catalog).checksum;
    const listed = await api.gql(
      `{ catalogReleases(first: 5) { totalCount edges { node { checksum latestVersion migrations { version verifiable } } } } }`,
    );
    expect(listed.errors).toBeUndefined();
    expect(listed.data?.catalogReleases.totalCount).toBe(1);
    expect(listed.data?.catalogReleases.edges[0].node).toMatchObject({ checksum, latestVersion: '0005' });
    expect(listed.data?.catalogReleases.edges[0].node.migrations.at(-1)).toEqual({
      version: '0005',
      verifiable: true,
    });

    const migrations = await api.gql(`{ migrations { version verifiable } }`);
    expect(migrations.data?.migrations.map((m: { verifiable: boolean }) => m.verifiable)).toEqual([
      false,
      false,
      false,
      false,
      true,
    ]);

    const started = await api.gql(
      `mutation ($input: StartMigrationRunInput!) { startMigrationRun(input: $input) {
        __typename ... on StartMigrationRunSuccess { run { id catalog { checksum } } } ... on Error { message } } }`,
      { input: { catalogChecksum: checksum, dryRun: true } },
    );
    // No tenant matches: the run is refused, but only after the checksum was accepted.
    expect(started.data?.startMigrationRun.__typename).toBe('PreconditionFailedError');

    const unknown = await api.gql(
      `mutation ($input: StartMigrationRunInput!) { startMigrationRun(input: $input) {
        __typename ... on ValidationError { field message } } }`,
      { input: { catalogChecksum: '0'.repeat(64) } },
    );
    expect(unknown.data?.startMigrationRun).toMatchObject({
      __typename: 'ValidationError',
      field: 'catalogChecksum',
    });

    const created = await api.gql(
      `mutation ($name: String!) { createTenant(input: { name: $name }) { ... on CreateTenantSuccess { provisioning { id } } } }`,
      { name: api.tenantName('release-run') },
    );
    const runGlobalId = created.data?.createTenant.provisioning.id as string;
    await waitForRunEnd(
      api.app.db,
      Buffer.from(runGlobalId, 'base64').toString('utf8').split(':')[1] as string,
    );
    const run = await api.gql(`query ($id: ID!) { migrationRun(id: $id) { catalog { checksum } } }`, {
      id: runGlobalId,
    });
    expect(run.errors).toBeUndefined();
    expect(run.data?.migrationRun.catalog.checksum).toBe(checksum);
  });
});
