/**
 * DATABASE isolation: `CREATE DATABASE` cannot run in a transaction, so a new tenant database and
 * its ownership marker are separate statements. A connection cut right after any of them (the
 * server did it, the worker never heard) must leave something the next attempt can finish: never
 * an unmarked database under the tenant's name, which only an operator could clear.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDatabase } from '../../../src/config.js';
import { quoteDatabase, withConnection } from '../../../src/db/pg.js';
import { loadCatalog, type MigrationCatalog } from '../../../src/migrations/index.js';
import { ownershipMarker } from '../../../src/tenants/ownership.js';
import { provisionTenant, stagingDatabaseOf } from '../../../src/tenants/provisioner.js';
import { testServerUrl } from '../../helpers/template.js';

const CATALOG = path.resolve(import.meta.dirname, '../../fixtures/migrations/basic');
const deploymentId = randomUUID();

/**
 * A TCP proxy in front of the test server that, once armed with a command tag, cuts both sides of
 * the first connection whose server answers that tag: the statement ran, its answer is lost.
 */
class CuttingProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private armed: string | null = null;
  cut = false;

  async start(): Promise<number> {
    this.server = createServer((client) => {
      const upstream = connect(5432, '127.0.0.1');
      for (const end of [client, upstream]) {
        this.sockets.add(end);
        end.on('error', () => end.destroy());
        end.on('close', () => this.sockets.delete(end));
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        // CommandComplete is 'C', a length, then the tag and a NUL.
        if (this.armed && chunk.includes(Buffer.from(`${this.armed}\0`))) {
          this.armed = null;
          this.cut = true;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(chunk);
      });
      upstream.on('end', () => client.end());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server!.address() as AddressInfo).port;
  }

  arm(tag: string): void {
    this.armed = tag;
    this.cut = false;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
  }
}

describe('provisioning a DATABASE tenant through a connection cut between its statements', () => {
  const proxy = new CuttingProxy();
  const names: string[] = [];
  let catalog: MigrationCatalog;
  let proxied = '';

  beforeAll(async () => {
    catalog = await loadCatalog(CATALOG);
    proxied = `postgresql://postgres@127.0.0.1:${await proxy.start()}/postgres`;
  });

  afterAll(async () => {
    await proxy.stop();
    await withConnection(testServerUrl(), async (client) => {
      const { rows } = await client.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname = ANY($1::text[]) OR starts_with(datname, $2)`,
        [names, `cp_new_${deploymentId.replace(/-/g, '').slice(0, 8)}`],
      );
      for (const { datname } of rows)
        await client.query(`DROP DATABASE IF EXISTS ${quoteDatabase(datname)} WITH (FORCE)`);
    });
  }, 120_000);

  async function provision(name: string, serverUrl: string): Promise<void> {
    const pool = new pg.Pool({ connectionString: withDatabase(testServerUrl(), name), max: 2 });
    try {
      await provisionTenant({
        location: { isolation: 'DATABASE', databaseName: name, schemaName: null },
        connectionString: withDatabase(serverUrl, name),
        pool,
        catalog,
        deploymentId,
      });
    } finally {
      await pool.end();
    }
  }

  async function stateOf(name: string) {
    const marker = await withConnection(testServerUrl(), (client) =>
      client.query<{ m: string | null }>(
        `SELECT shobj_description(oid, 'pg_database') AS m FROM pg_database WHERE datname = $1`,
        [name],
      ),
    );
    const ledger = await withConnection(withDatabase(testServerUrl(), name), (client) =>
      client.query<{ version: string }>('SELECT version FROM public.control_plane_ledger ORDER BY version'),
    );
    return { marker: marker.rows[0]?.m, versions: ledger.rows.map((row) => row.version) };
  }

  for (const tag of ['CREATE DATABASE', 'COMMENT', 'ALTER DATABASE']) {
    it(`finishes on the next attempt after a cut right after ${tag}`, async () => {
      const name = `cpt_cut_${randomBytes(4).toString('hex')}`;
      names.push(name);
      proxy.arm(tag);
      const first = await provision(name, proxied).then(
        () => null,
        (error: unknown) => error,
      );
      expect(proxy.cut).toBe(true);
      expect(first).toBeInstanceOf(Error);

      await provision(name, testServerUrl());
      expect(await stateOf(name)).toEqual({
        marker: ownershipMarker(deploymentId),
        versions: catalog.files.map((file) => file.version),
      });
      const staging = await withConnection(testServerUrl(), (client) =>
        client.query('SELECT datname FROM pg_database WHERE datname = $1', [
          stagingDatabaseOf(deploymentId, name),
        ]),
      );
      expect(staging.rows).toEqual([]);
    });
  }
});
