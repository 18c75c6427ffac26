import { describe, expect, it } from 'vitest';
import { ACTOR, useRunHarness } from './run-harness.js';
import { waitForRunEnd } from './run-assertions.js';

// What 0002_reject_everything raises: the hot path sends it to the control plane as a SQL literal.
const MESSAGE = "it's a \\ trap; $1 E'x' -- end";

describe('the hot path of a target', () => {
  const h = useRunHarness('quoting');

  it('records an error with quotes, a backslash and placeholders exactly as raised', async () => {
    const ids = await h.createTenants('quote', 3);
    await h.startWorker();
    const run = await h.service.startMigrationRun({ tenants: { ids }, concurrency: 2 }, ACTOR);
    const ended = await waitForRunEnd(h.db, run.id);
    expect(ended).toMatchObject({ status: 'FAILED', failed: 3, pending: 0, running: 0, succeeded: 0 });

    const targets = await h.db.migrationRunTarget.findMany({ where: { runId: run.id } });
    for (const target of targets) {
      expect(target).toMatchObject({ status: 'FAILED', errorCode: 'P0001', attempts: 1 });
      expect(target.error).toContain(MESSAGE);
    }
    const databases = await h.db.tenantDatabase.findMany({ where: { tenantId: { in: ids } } });
    for (const database of databases) expect(database.lastError).toContain(MESSAGE);
  });
});
