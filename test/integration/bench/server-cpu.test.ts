/**
 * The bench's server-wide PostgreSQL CPU counts what a connection used even after it closed: the
 * floors' connections end before their segment's second sample.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresServerCpuSeconds } from '../../../bench/lib/stack.js';
import { testServerUrl } from '../../helpers/template.js';

describe('postgresServerCpuSeconds', () => {
  it('keeps the CPU of a backend that has exited', async () => {
    const before = await postgresServerCpuSeconds();
    const client = new pg.Client({ connectionString: testServerUrl() });
    await client.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    // Work enough for the kernel's 10 ms ticks to see it.
    await client.query('SELECT count(*) FROM generate_series(1, 5000000)');
    await client.end();
    // Gone, and reaped by the postmaster.
    const { readFile } = await import('node:fs/promises');
    for (
      let i = 0;
      i < 50 &&
      (await readFile(`/proc/${rows[0]!.pid}/stat`).then(
        () => true,
        () => false,
      ));
      i++
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    const after = await postgresServerCpuSeconds();
    expect(after - before).toBeGreaterThanOrEqual(0.1);
  });
});
