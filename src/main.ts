/**
 * Entry point: `all` (API + one embedded worker, the default), `api` or `worker`.
 * Migrates the control plane on boot; shuts down gracefully on SIGTERM/SIGINT.
 */
import { createApp, type App } from './app.js';
import { loadConfig, type Config } from './config.js';
import { ConfigError } from './errors.js';
import { createLogger } from './logger.js';

const ROLES = {
  all: { api: true, worker: true },
  api: { api: true, worker: false },
  worker: { api: false, worker: true },
} as const;
type RoleName = keyof typeof ROLES;

async function main(): Promise<void> {
  const roleName = process.argv[2] ?? 'all';
  if (!(roleName in ROLES)) {
    process.stderr.write(`Unknown role "${roleName}": use all, api or worker\n`);
    process.exit(1);
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, { role: roleName });
  if (config.usingDevelopmentKey) {
    logger.warn(
      'ENCRYPTION_KEY is not set: using the fixed development key; never do this with real tenants',
    );
  }
  if (config.authDisabled) {
    logger.warn('AUTH_DISABLED: every request is ADMIN; listening on the loopback interface only', {
      host: config.host,
    });
  } else if (!config.bootstrapAdminToken) {
    // The first login on a fresh machine: say how, without ever putting a token in a log.
    logger.info(
      'first login: `npm run migrate -- token create --name <name> --role ADMIN` prints a token (or export BOOTSTRAP_ADMIN_TOKEN, 16+ characters)',
    );
  }

  const app: App = await createApp(config, { roles: ROLES[roleName as RoleName], logger });
  if (app.server) {
    const port = await app.listen(config.port);
    const shown = config.host === '::' || config.host === '0.0.0.0' ? 'localhost' : config.host;
    const base = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
    logger.info('listening', { url: `${base}/graphql`, host: config.host });
  }
  if (app.worker) logger.info('worker started', { concurrency: config.workerConcurrency });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    app.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  createLogger('error').error('startup failed', { error });
  process.exit(1);
});
