import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pg from 'pg';

/**
 * The raw floor: each tenant's SQL applied in one transaction on `connections` plain `pg`
 * connections, with no ledger, lock or bookkeeping. What any tool must pay at least.
 */
export async function runRawFloor(
  url: string,
  upSql: readonly string[],
  schemas: readonly string[],
  connections: number,
) {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  const script = upSql.join('\n');
  let next = 0;
  const started = performance.now();
  try {
    await Promise.all(
      clients.map(async (client) => {
        for (let i = next++; i < schemas.length; i = next++) {
          const schema = pg.escapeIdentifier(schemas[i] as string);
          await client.query(`BEGIN; SET LOCAL search_path TO ${schema}; ${script}; COMMIT;`);
        }
      }),
    );
    return { seconds: (performance.now() - started) / 1000 };
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
}

/**
 * node-pg-migrate's programmatic runner over the same schemas with a pool of `poolSize`
 * concurrent runners, each tenant in one transaction with its own migrations table and lock.
 * Each runner keeps one connection, opened before the timing (its `dbClient`), as the raw floor's
 * and our worker's connections are: given a URL instead, it connects and disconnects for every
 * tenant, which cost it a third of its rate (B1, N=400: 37-49 against 68-71 tenants/s).
 */
export async function runNodePgMigrate(
  url: string,
  catalogDir: string,
  schemas: readonly string[],
  poolSize: number,
) {
  const { runner } = await import('node-pg-migrate');
  const dir = await writeNodePgMigrateCatalog(catalogDir);
  const clients: pg.Client[] = [];
  try {
    for (let i = 0; i < poolSize; i++) {
      const client = new pg.Client({ connectionString: url });
      clients.push(client);
      await client.connect();
    }
    let next = 0;
    const started = performance.now();
    await Promise.all(
      clients.map(async (client) => {
        for (let i = next++; i < schemas.length; i = next++) {
          const schema = schemas[i] as string;
          await runner({
            dbClient: client,
            dir,
            schema,
            createSchema: false,
            migrationsTable: 'pgmigrations',
            direction: 'up',
            count: Number.POSITIVE_INFINITY,
            singleTransaction: true,
            checkOrder: true,
            // Its default lock is one value for the whole database; a per-schema value lets
            // tenants proceed in parallel, as our per-tenant advisory lock does.
            lockValue: hashSchema(schema),
            log: () => undefined,
            verbose: false,
          });
        }
      }),
    );
    return { seconds: (performance.now() - started) / 1000 };
  } finally {
    await Promise.all(clients.map((client) => client.end()));
    await rm(dir, { recursive: true, force: true });
  }
}

/** Copies our catalog into node-pg-migrate's SQL migration format (`-- Up Migration` markers). */
async function writeNodePgMigrateCatalog(catalogDir: string): Promise<string> {
  const dir = join(tmpdir(), `npm-catalog-${process.pid}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const ups = (await readdir(catalogDir)).filter((file) => file.endsWith('.up.sql')).sort();
  for (const file of ups) {
    const up = await readFile(join(catalogDir, file), 'utf8');
    const downFile = file.replace(/\.up\.sql$/, '.down.sql');
    const down = await readFile(join(catalogDir, downFile), 'utf8').catch(() => '');
    await writeFile(
      join(dir, file.replace(/\.up\.sql$/, '.sql')),
      `-- Up Migration\n${up}\n-- Down Migration\n${down}\n`,
    );
  }
  return dir;
}

function hashSchema(schema: string): number {
  let hash = 7;
  for (const char of schema) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return hash;
}
