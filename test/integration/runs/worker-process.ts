/**
 * A target worker in a process of its own, for tests that kill a worker with SIGKILL. Reads the
 * same environment as the service; prints "ready" once it takes jobs.
 */
import { composeServices } from '../../../src/composition.js';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/logger.js';

const config = loadConfig();
const app = await composeServices(config, { logger: createLogger(config.logLevel), name: 'child' });
await app.startWorker({ lockDurationMs: Number(process.env.TEST_LOCK_DURATION_MS ?? 1000) });
process.stdout.write('ready\n');
