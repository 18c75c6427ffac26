/**
 * Checking a database server before it is registered: connect with the given connection string
 * and read whether its role may create schemas (CREATE on the database) and databases (CREATEDB).
 * The reasons it returns never contain the connection string or its password.
 */
import pg from 'pg';

// An unreachable host answers nothing; registration gives up after this long.
const CONNECT_TIMEOUT_MS = 5000;

/** Why a server cannot be registered, or null when it can. */
export async function checkDatabaseServer(connectionString: string): Promise<string | null> {
  const client = new pg.Client({
    connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'tenant-control-plane-server-check',
  });
  // A server that drops the connection later must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    return `Could not connect to the server: ${scrub(describe(error), connectionString)}`;
  }
  try {
    const { rows } = await client.query<{ createSchema: boolean; createDatabase: boolean; role: string }>(
      `SELECT has_database_privilege(current_database(), 'CREATE') AS "createSchema",
         (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user) AS "createDatabase",
         current_user AS role`,
    );
    const row = rows[0];
    const missing: string[] = [];
    if (!row?.createSchema) missing.push('CREATE on its database (for SCHEMA isolation)');
    if (!row?.createDatabase) missing.push('CREATEDB (for DATABASE isolation)');
    return missing.length === 0 ? null : `Role "${row?.role ?? '?'}" lacks ${missing.join(' and ')}`;
  } catch (error) {
    return `Could not check privileges: ${scrub(describe(error), connectionString)}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describe(error.errors[0]);
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' && message ? message : String(error);
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}

// pg's messages name the user and host, not the password; removed anyway should one ever appear.
function scrub(text: string, connectionString: string): string {
  let out = text.split(connectionString).join('[connection string]');
  try {
    const password = decodeURIComponent(new URL(connectionString).password);
    if (password) out = out.split(password).join('[redacted]');
  } catch {
    // Not a URL: nothing more to remove.
  }
  return out;
}
