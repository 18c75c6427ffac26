import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';
import { ledgerVersions, waitForRunEnd } from '../runs/run-assertions.js';

// One tenant connection per worker, so each read runs on the connection that moved the tenant and
// has prepared the read before: the catalog's `DEALLOCATE ALL` then makes that read fail.
describe('a fingerprint read that fails after a committed move', () => {
  const h = useRunHarness('deallocating', { TENANT_POOL_SIZE: '1' });

  async function run(start: Promise<{ id: string }>) {
    const { id } = await start;
    const ended = await waitForRunEnd(h.db, id);
    const [target] = await h.db.migrationRunTarget.findMany({ where: { runId: id } });
    return { run: ended, target: target! };
  }

  it('leaves the target SUCCEEDED with its version, logs the failure and keeps the last fingerprint', async () => {
    const warnings: string[] = [];
    const logger = createLogger('warn', {}, (line) => warnings.push(line));
    await h.startWorker({ logger });
    const [id] = await h.createTenants('unread', 1);
    const database = () => h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId: id! } });

    const first = await run(
      h.service.startMigrationRun({ targetVersion: '0001', tenants: { ids: [id!] } }, ACTOR),
    );
    expect(first.run.status).toBe('SUCCEEDED');
    const recorded = await database();
    expect(recorded).toMatchObject({ schemaVersion: '0001', fingerprintMatches: true });
    expect(warnings).toEqual([]);

    // The one-trip path: the read rides after the COMMIT and fails there.
    const second = await run(
      h.service.startMigrationRun({ targetVersion: '0002', tenants: { ids: [id!] } }, ACTOR),
    );
    expect(second.run.status).toBe('SUCCEEDED');
    expect(second.target).toMatchObject({ status: 'SUCCEEDED', fromVersion: '0001', toVersion: '0002' });
    expect(second.target.appliedVersions).toEqual(['0002']);
    expect(await ledgerVersions(h.database.pool, 'tenant_unread_000')).toEqual(['0001', '0002']);
    const afterSecond = await database();
    expect(afterSecond).toMatchObject({
      schemaVersion: '0002',
      fingerprintHash: recorded.fingerprintHash,
      fingerprintComputedAt: recorded.fingerprintComputedAt,
    });
    expect(warnings.map((line) => JSON.parse(line) as { msg: string; error?: { message?: string } })).toEqual(
      [
        expect.objectContaining({
          msg: 'could not record the fingerprint after a move',
          error: expect.objectContaining({ message: expect.stringContaining('fingerprint_describe_schema') }),
        }),
      ],
    );

    // A VERIFY run reads it again (and prepares the read on the worker's connection).
    const verify = await run(h.service.startVerifyRun({ tenants: { ids: [id!] } }, ACTOR));
    expect(verify.run.status).toBe('SUCCEEDED');
    const verified = await database();
    expect(verified.fingerprintComputedAt!.getTime()).toBeGreaterThan(
      recorded.fingerprintComputedAt!.getTime(),
    );

    // The careful path (one transaction per file): the read on its own after the move fails.
    const third = await run(
      h.service.startMigrationRun({ tenants: { ids: [id!] }, transactionMode: 'PER_MIGRATION' }, ACTOR),
    );
    expect(third.target).toMatchObject({ status: 'SUCCEEDED', fromVersion: '0002', toVersion: '0003' });
    expect(await ledgerVersions(h.database.pool, 'tenant_unread_000')).toEqual(['0001', '0002', '0003']);
    expect(await database()).toMatchObject({
      schemaVersion: '0003',
      fingerprintHash: verified.fingerprintHash,
      fingerprintComputedAt: verified.fingerprintComputedAt,
    });
    expect(warnings).toHaveLength(2);
  });
});
