/**
 * `token create --name <name> --role <role>`: issues an API token straight in the control
 * plane, for the first login on a fresh install and for automation. The token is printed once on
 * stdout and nothing else is (so `TOKEN=$(npm run -s migrate -- token create ...)` works); the
 * call is audited with actor kind `cli`.
 */
import os from 'node:os';
import { createAuditLog } from '../audit/audit-log.js';
import { isApiRole } from '../auth/roles.js';
import { createTokenService } from '../auth/tokens.js';
import type { Config } from '../config.js';
import { createControlPlaneDb } from '../db/control-plane.js';
import { AppError } from '../errors.js';
import { createLogger } from '../logger.js';
import { migrateControlPlane } from '../migrations/index.js';
import { UsageError } from './usage-error.js';

/** The parsed command line `token` reads (a subset of the CLI's CommandInput). */
export interface TokenCommandInput {
  readonly action: string | undefined;
  readonly name?: string | undefined;
  readonly role?: string | undefined;
}

/** Where the command prints the token. */
export interface TokenCommandIo {
  readonly out: (line: string) => void;
}

// api_tokens.name is varchar(255).
const NAME_MAX = 255;

/** The `token` command group. */
export async function tokenCommand(
  config: Config,
  input: TokenCommandInput,
  io: TokenCommandIo,
): Promise<void> {
  if (input.action !== 'create') {
    throw new UsageError(`unknown action "token ${input.action ?? ''}": use create`);
  }
  const name = input.name?.trim() ?? '';
  if (name.length === 0 || name.length > NAME_MAX) {
    throw new UsageError(`token create needs --name <name> (1-${NAME_MAX} characters)`);
  }
  const role = input.role?.toUpperCase();
  if (!isApiRole(role)) throw new UsageError('token create needs --role VIEWER, OPERATOR or ADMIN');

  // The API applies these at boot; a first token may well be made before the first start.
  await migrateControlPlane(config.databaseUrl, config.controlPlaneMigrationsDir);
  const db = createControlPlaneDb(config.databaseUrl, { maxConnections: 2 });
  // Warnings and errors go to stderr: stdout carries the token alone.
  const logger = createLogger(config.logLevel === 'debug' ? 'debug' : 'warn');
  try {
    const actor = `cli:${os.userInfo().username}`;
    const audit = createAuditLog({ db, logger });
    const entry = {
      actor,
      actorKind: 'cli',
      action: 'createApiToken',
      targetType: 'ApiToken',
      input: { name, role },
    } as const;
    const tokens = createTokenService({ db, config, logger });
    const created = await tokens.createToken({ name, role }, actor).catch(async (error: unknown) => {
      await audit.record({
        ...entry,
        outcome: error instanceof AppError ? error.code : 'INTERNAL',
        error: error instanceof Error ? error.message : String(error),
      });
      throw error;
    });
    await audit.record({ ...entry, targetId: created.apiToken.id, outcome: 'success' });
    io.out(created.token);
  } finally {
    await db.$disconnect();
  }
}
