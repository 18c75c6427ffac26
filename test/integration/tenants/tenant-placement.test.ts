import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlanePool, type ControlPlanePool } from '../../../src/db/control-plane.js';
import { ConflictError, ValidationError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logger.js';
import type { ServerService } from '../../../src/servers/server-service.js';
import { createTenantService, type TenantService } from '../../../src/tenants/tenant-service.js';
import { useSecondServer } from '../../helpers/second-server.js';
import { ACTOR, useRunHarness } from '../runs/run-harness.js';

describe('placing a new tenant', () => {
  const h = useRunHarness('irreversible');
  const second = useSecondServer();
  let pool: ControlPlanePool;
  let tenants: TenantService;
  // What createTenant asks the control plane: placements, and statements on its own pool.
  let placements = 0;
  let statements = 0;

  beforeAll(() => {
    pool = createControlPlanePool(h.config.databaseUrl, { maxConnections: 2, applicationName: 'test' });
    const counted = new Proxy(pool, {
      get(target, key) {
        const value: unknown = Reflect.get(target, key, target);
        if (key === 'query') {
          return (...args: unknown[]) => {
            statements += 1;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const servers: Pick<ServerService, 'placeTenant'> = {
      placeTenant: (serverId) => {
        placements += 1;
        return h.servers.placeTenant(serverId);
      },
    };
    tenants = createTenantService({
      db: h.db,
      controlPlanePool: counted,
      config: h.config,
      servers,
      queue: h.queue,
      secretBox: h.secretBox,
      tenantPools: h.tenantPools,
      readPools: h.tenantPools,
      catalog: h.catalog,
      logger: createLogger('silent'),
    });
  });
  afterAll(() => pool.end());

  const serverOf = async (tenantId: string) =>
    (await h.db.tenantDatabase.findFirstOrThrow({ where: { tenantId } })).serverId;

  it('registers each tenant after the first in one statement while one server accepts tenants', async () => {
    for (const name of ['place-a', 'place-b', 'place-c']) await tenants.createTenant({ name }, ACTOR);
    // The first read the servers; the others found the same server the only one accepting.
    expect(placements).toBe(1);
    expect(statements).toBe(3);
  });

  it('places on a server that starts accepting tenants since, when it has fewer', async () => {
    const defaultId = (await h.servers.defaultServer()).id;
    const other = await h.servers.registerDatabaseServer({ name: 'second', connectionString: second.url });
    const { tenant } = await tenants.createTenant({ name: 'place-d' }, ACTOR);
    expect(await serverOf(tenant.tenantId)).toBe(other.id);
    // Two accepting servers: every placement reads them again.
    placements = 0;
    const { tenant: next } = await tenants.createTenant({ name: 'place-e' }, ACTOR);
    expect(placements).toBe(1);
    expect([defaultId, other.id]).toContain(await serverOf(next.tenantId));
    await h.servers.updateDatabaseServer({ id: other.id, acceptingTenants: false });
  });

  it('refuses a server that stopped accepting tenants since its last placement, creating nothing', async () => {
    const named = (await h.servers.defaultServer()).id;
    await tenants.createTenant({ name: 'place-f', serverId: named }, ACTOR);
    await tenants.createTenant({ name: 'place-g' }, ACTOR);
    await h.servers.updateDatabaseServer({ id: named, acceptingTenants: false });
    const before = await h.db.tenant.count();
    for (const input of [{ name: 'place-h' }, { name: 'place-i', serverId: named }]) {
      const error = await tenants.createTenant(input, ACTOR).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
    }
    expect(await h.db.tenant.count()).toBe(before);
    await h.servers.updateDatabaseServer({ id: named, acceptingTenants: true });
    const { tenant } = await tenants.createTenant({ name: 'place-j' }, ACTOR);
    expect(await serverOf(tenant.tenantId)).toBe(named);
    // A name taken is still a conflict on a remembered placement.
    const taken = await tenants.createTenant({ name: 'place-j' }, ACTOR).catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(ConflictError);
  });
});
