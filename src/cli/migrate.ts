/**
 * `npm run migrate -- <command>`: the migration CLI. Exit codes: 0 done, 1 failed (one line
 * on stderr), 2 bad usage (with the usage text).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { AppError } from '../errors.js';
import { COMMANDS } from './commands.js';
import { UsageError } from './usage-error.js';
import type { CommandInput } from './commands.js';

/** The usage text printed on bad usage and for --help. */
export const USAGE = `Usage: npm run migrate -- <command>

  control-plane up|status
  tenant up|down|status|stamp|history --tenant <name> [--to <version>] [--mode per-tenant|per-migration]
  plan --tenant <name> [--to <version>]        print the SQL \`tenant up\` would run; runs nothing
  tenants up [--environment <env>] [--concurrency N] [--to <version>] [--dry-run] [--with-worker]
                                               every tenant through the queue, with a progress bar;
                                               needs a running worker (npm start) unless --with-worker
  secrets reseal                               re-encrypt stored connection strings under ENCRYPTION_KEY
  drift [--environment <env>]                  the fleet grouped by structure: expected clusters, then outliers
  adopt --pattern <like> [--server <id or name>] [--source AUTO|OWN|ALEMBIC|FLYWAY|GOLANG_MIGRATE|FINGERPRINT]
        [--name-prefix <p>] [--version-map <json>] [--dry-run] [--with-worker]
                                               register existing schemas as tenants through an ADOPT run
  token create --name <name> --role VIEWER|OPERATOR|ADMIN
                                               issue an API token; prints it once on stdout
  catalog publish [--dir <dir>]                publish a catalog directory (default MIGRATIONS_DIR) as a
                                               release; publishing the same files again adds nothing
  catalog list                                 the releases the control plane holds, newest first
  servers list                                 database servers: address, placement, budget, tenants
  servers add --name <name> --url <url> [--max-concurrent N]
                                               register a server (connection and privileges checked)
  backup --tenant <name>                       pg_dump the tenant into BACKUP_DIR now; prints the backup id
  restore --backup <id>                        replace the tenant's schema or database with that backup
                                               (checksum checked first; a deleted tenant comes back)

A tenant name "acme" means schema tenant_acme on TENANT_DATABASE_URL.
\`tenant down\` needs --to (--to 0 reverts everything); \`tenant stamp\` records versions <= --to without running them.`;

/** Runs the CLI for `argv` (without node and script) and returns the exit code. */
export async function runMigrateCli(argv: readonly string[]): Promise<number> {
  let input: CommandInput & { readonly group: string | undefined; readonly help: boolean };
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        tenant: { type: 'string' },
        to: { type: 'string' },
        mode: { type: 'string' },
        environment: { type: 'string' },
        concurrency: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'with-worker': { type: 'boolean' },
        name: { type: 'string' },
        role: { type: 'string' },
        dir: { type: 'string' },
        url: { type: 'string' },
        'max-concurrent': { type: 'string' },
        pattern: { type: 'string' },
        server: { type: 'string' },
        source: { type: 'string' },
        'name-prefix': { type: 'string' },
        'version-map': { type: 'string' },
        backup: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (positionals.length > 2) throw new UsageError(`unexpected argument "${positionals[2]}"`);
    input = { group: positionals[0], action: positionals[1], help: values.help ?? false, ...values };
  } catch (error) {
    return usageFailure(error instanceof Error ? error.message : String(error));
  }
  if (input.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const handler = input.group ? COMMANDS[input.group] : undefined;
  if (!handler) return usageFailure(input.group ? `unknown command "${input.group}"` : 'missing command');
  try {
    const config = loadConfig();
    await handler(config, input, { out: (line) => process.stdout.write(`${line}\n`) });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(error.message);
    if (error instanceof AppError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 1;
    }
    // Not an expected failure: still one line first, then the details for whoever debugs it.
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

function usageFailure(message: string): number {
  process.stderr.write(`error: ${message}\n\n${USAGE}\n`);
  return 2;
}

process.exitCode = await runMigrateCli(process.argv.slice(2));
