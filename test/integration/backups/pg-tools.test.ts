/**
 * Finding pg_dump, pg_restore and psql of the tenant server's major version (issue 15): Debian's
 * per-version directory first, a clear typed error when a tool is missing or of another version.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PgToolsMissingError,
  PgToolsVersionMismatchError,
  resolvePgTools,
  serverMajorOf,
  toolMajorOf,
} from '../../../src/backups/pg-tools.js';
import { PreconditionFailedError } from '../../../src/errors.js';

describe('resolvePgTools', () => {
  let root: string;

  // A fake tool that prints `version` as PostgreSQL's tools do.
  async function fakeTools(dir: string, version: string, tools = ['pg_dump', 'pg_restore', 'psql']) {
    await mkdir(dir, { recursive: true });
    for (const tool of tools) {
      const file = path.join(dir, tool);
      await writeFile(file, `#!/bin/sh\necho "${tool} (PostgreSQL) ${version} (Debian)"\n`);
      await chmod(file, 0o755);
    }
  }

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'pg-tools-'));
    await fakeTools(path.join(root, 'debian/16/bin'), '16.4');
    await fakeTools(path.join(root, 'path15'), '15.20');
    await fakeTools(path.join(root, 'only-dump'), '17.1', ['pg_dump']);
  });

  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('parses server and tool versions', () => {
    expect(serverMajorOf(150020)).toBe(15);
    expect(serverMajorOf(170002)).toBe(17);
    expect(toolMajorOf('pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n')).toBe(15);
    expect(toolMajorOf('pg_restore (PostgreSQL) 17beta1')).toBe(17);
    expect(toolMajorOf('something else')).toBeNull();
  });

  it("prefers Debian's directory of the server's major version over PATH", async () => {
    const tools = await resolvePgTools(160004, {
      debianRoot: path.join(root, 'debian'),
      pathDirs: [path.join(root, 'path15')],
    });
    expect(tools).toEqual({
      major: 16,
      pgDump: path.join(root, 'debian/16/bin/pg_dump'),
      pgRestore: path.join(root, 'debian/16/bin/pg_restore'),
      psql: path.join(root, 'debian/16/bin/psql'),
    });
  });

  it('refuses tools of another major version with a typed error naming both versions', async () => {
    const error = await resolvePgTools(160004, {
      debianRoot: path.join(root, 'none'),
      pathDirs: [path.join(root, 'path15')],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PgToolsVersionMismatchError);
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect((error as Error).message).toMatch(
      /pg_dump is PostgreSQL 15 but the tenant server is PostgreSQL 16/,
    );
  });

  it('names the missing tool and where it looked', async () => {
    const error = await resolvePgTools(170002, {
      debianRoot: path.join(root, 'none'),
      pathDirs: [path.join(root, 'only-dump')],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PgToolsMissingError);
    expect((error as Error).message).toMatch(/pg_restore for PostgreSQL 17 was not found/);
    expect((error as Error).message).toMatch(/postgresql-client-17/);
  });

  it("finds this machine's tools for the test server", async () => {
    const tools = await resolvePgTools(150020);
    expect(tools.major).toBe(15);
    expect(tools.pgDump).toMatch(/pg_dump$/);
  });
});
