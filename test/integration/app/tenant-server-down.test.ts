/**
 * The API starts while its default tenant server is down (issue 12): it answers /readyz, which
 * depends on the control plane and Redis only, registers the default server, and creates the
 * tenant database once the server answers.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { expectEventually } from '../../helpers/eventually.js';
import { testServerUrl } from '../../helpers/template.js';
import { useApiHarness } from '../graphql/harness.js';

const port = await freePort();
const tenantDatabase = `cpt_down_${randomBytes(4).toString('hex')}`;

describe('an API whose default tenant server is down at start', () => {
  const api = useApiHarness({
    TENANT_DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/${tenantDatabase}`,
  });
  let base = '';
  let proxy: Server | undefined;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    base = `http://127.0.0.1:${await api.app.listen(0)}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
    await withConnection(testServerUrl(), (client) =>
      client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(tenantDatabase)} WITH (FORCE)`),
    );
  });

  it('starts, is ready and lists the default server', async () => {
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const servers = await api.gql<{ databaseServers: { name: string; host: string; port: number }[] }>(
      '{ databaseServers { name host port } }',
    );
    expect(servers.data?.databaseServers).toEqual([{ name: 'default', host: '127.0.0.1', port }]);
  });

  it('creates the tenant database once the server answers', async () => {
    expect(await databaseExists()).toBe(false);
    // The server comes back: a TCP proxy on its port in front of the real one.
    proxy = createServer((socket) => {
      const upstream = connect(5432, '127.0.0.1');
      for (const end of [socket, upstream]) {
        sockets.add(end);
        end.on('error', () => end.destroy());
        end.on('close', () => sockets.delete(end));
      }
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => proxy!.listen(port, '127.0.0.1', resolve));
    await expectEventually(async () => expect(await databaseExists()).toBe(true), { timeoutMs: 30_000 });
  });
});

async function databaseExists(): Promise<boolean> {
  return withConnection(testServerUrl(), async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [tenantDatabase]);
    return rowCount === 1;
  });
}

/** A TCP port nothing listens on now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: free } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return free;
}
