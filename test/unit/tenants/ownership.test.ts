import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../../src/errors.js';
import { captureError } from '../../helpers/errors.js';
import {
  OwnershipConflictError,
  judgeOwnership,
  markOwnedSql,
  ownershipMarker,
  ownershipQuery,
  type OwnedLocation,
} from '../../../src/tenants/ownership.js';

const ours = randomUUID();
const theirs = randomUUID();
const schema: OwnedLocation = { isolation: 'SCHEMA', databaseName: 'tenants', schemaName: 'tenant_acme' };
const database: OwnedLocation = { isolation: 'DATABASE', databaseName: 'tenant_acme', schemaName: null };

describe('judgeOwnership', () => {
  it('finds no object, or our own marker', () => {
    expect(judgeOwnership(undefined, schema, ours)).toBe('absent');
    expect(judgeOwnership({ marker: ownershipMarker(ours) }, schema, ours)).toBe('owned');
    expect(judgeOwnership({ marker: ownershipMarker(ours) }, database, ours)).toBe('owned');
  });

  it("refuses another deployment's object, naming that deployment", () => {
    const error = captureError(() => judgeOwnership({ marker: ownershipMarker(theirs) }, database, ours));
    expect(error).toBeInstanceOf(OwnershipConflictError);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({
      objectKind: 'database',
      objectName: 'tenant_acme',
      ownerDeploymentId: theirs,
    });
    expect((error as Error).message).toContain(theirs);
  });

  it('refuses an object without a marker unless a row registered before markers may adopt it', () => {
    for (const marker of [null, 'made by hand']) {
      expect(captureError(() => judgeOwnership({ marker }, schema, ours))).toMatchObject({
        ownerDeploymentId: null,
        message: expect.stringMatching(/without this control plane's ownership marker/),
      });
      expect(judgeOwnership({ marker }, { ...schema, adoptUnmarked: true }, ours)).toBe('adopted');
    }
    // Never another deployment's, and never a name that no tenant ever had.
    expect(() =>
      judgeOwnership({ marker: ownershipMarker(theirs) }, { ...schema, adoptUnmarked: true }, ours),
    ).toThrow(OwnershipConflictError);
    expect(() =>
      judgeOwnership({ marker: null }, { ...schema, schemaName: 'public', adoptUnmarked: true }, ours),
    ).toThrow(OwnershipConflictError);
  });
});

describe('ownership SQL', () => {
  it('quotes names and the marker as literals', () => {
    expect(ownershipQuery(schema)).toContain(`nspname = 'tenant_acme'`);
    expect(ownershipQuery(database)).toContain(`datname = 'tenant_acme'`);
    expect(markOwnedSql(schema, ours)).toBe(`COMMENT ON SCHEMA "tenant_acme" IS '${ownershipMarker(ours)}'`);
    expect(markOwnedSql(database, ours)).toBe(
      `COMMENT ON DATABASE "tenant_acme" IS '${ownershipMarker(ours)}'`,
    );
  });

  it('refuses identifiers and deployment ids that are not plain', () => {
    expect(() => ownershipQuery({ ...schema, schemaName: `x'; drop schema public; --` })).toThrow();
    expect(() => ownershipMarker(`x'; drop`)).toThrow(/deployment id/);
  });
});
