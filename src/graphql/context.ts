import type { AuditLog } from '../audit/audit-log.js';
import type { Principal } from '../auth/principal.js';
import type { TokenService } from '../auth/tokens.js';
import type { ControlPlaneDb } from '../db/control-plane.js';
import type { AdoptionService } from '../fingerprints/adoption-service.js';
import type { FingerprintService } from '../fingerprints/fingerprint-service.js';
import type { Logger } from '../logger.js';
import type { MigrationCatalog } from '../migrations/types.js';
import type { RunEventBus } from '../pubsub/run-events.js';
import type { RunReader } from '../runs/run-service.js';
import type { RunService } from '../runs/types.js';
import type { ReleaseCatalogs } from '../catalog-releases/release-catalogs.js';
import type { ServerService } from '../servers/server-service.js';
import type { SystemConfigService } from '../system-config/system-config-service.js';
import type { TenantService } from '../tenants/tenant-service.js';

/** The services resolvers call; each resolver stays a thin call into one of them. */
export interface GraphqlServices {
  readonly tenants: TenantService;
  readonly systemConfig: SystemConfigService;
  readonly tokens: TokenService;
  readonly audit: AuditLog;
  readonly runs: RunService;
  readonly runReader: RunReader;
  readonly catalog: MigrationCatalog;
  /** The API's own release and the releases runs pin (cached by id). */
  readonly catalogs: Pick<ReleaseCatalogs, 'local' | 'forRelease'>;
  readonly servers: ServerService;
  readonly fingerprints: FingerprintService;
  readonly adoption: AdoptionService;
}

/** Per-request context: who is calling and what they may use. */
export interface GraphqlContext {
  /** Null when the request carried no token, or an unknown or revoked one. */
  readonly principal: Principal | null;
  readonly db: ControlPlaneDb;
  readonly services: GraphqlServices;
  readonly events: RunEventBus;
  /**
   * Resolves once every subscription started so far is live on the event bus, so a snapshot
   * read afterwards cannot miss an event published in between.
   */
  readonly eventsReady: () => Promise<void>;
  readonly logger: Logger;
  readonly requestId: string;
}
