/** Tenants registered straight into the control plane on a given server, for run tests. */
import { randomUUID } from 'node:crypto';
import type { RunHarness } from '../runs/run-harness.js';

/** A server as tenants are registered on it: its row id and a connection string to its database. */
export interface ServerHome {
  readonly serverId: string;
  readonly url: string;
}

/** Inserts `count` ACTIVE SCHEMA-isolated tenants on `home` (schemas not created); returns their ids. */
export async function createTenantsOn(
  h: RunHarness,
  home: ServerHome,
  namePrefix: string,
  count: number,
): Promise<string[]> {
  const url = new URL(home.url);
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const name = `${namePrefix}_${String(i).padStart(3, '0')}`;
    const databaseId = randomUUID();
    const tenant = await h.db.tenant.create({
      data: {
        name,
        status: 'ACTIVE',
        databases: {
          create: {
            id: databaseId,
            connectionStringEncrypted: h.secretBox.sealConnectionString(databaseId, home.url),
            databaseName: url.pathname.slice(1),
            host: url.hostname,
            port: Number(url.port || 5432),
            status: 'ACTIVE',
            isolation: 'SCHEMA',
            schemaName: `tenant_${name}`,
            serverId: home.serverId,
          },
        },
      },
    });
    ids.push(tenant.tenantId);
  }
  return ids;
}
