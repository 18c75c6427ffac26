import type { HistoryEntry } from '../../migrations/index.js';
import type { MigrationFile } from '../../migrations/types.js';
import { builder } from '../builder.js';

export const MigrationRef = builder.objectRef<MigrationFile>('Migration').implement({
  description: 'One file pair of the tenant catalog on disk',
  fields: (t) => ({
    version: t.exposeString('version'),
    name: t.exposeString('name'),
    checksum: t.exposeString('checksum'),
    transactional: t.exposeBoolean('transactional'),
    reversible: t.exposeBoolean('reversible'),
    verifiable: t.exposeBoolean('verifiable', {
      description: 'Has a NNNN_name.verify.sql, run right after the up file',
    }),
  }),
});

export const AppliedMigrationRef = builder.objectRef<HistoryEntry>('AppliedMigration').implement({
  description: "A row of a tenant's own ledger",
  fields: (t) => ({
    version: t.exposeString('version'),
    name: t.exposeString('name'),
    checksum: t.exposeString('checksum'),
    appliedAt: t.field({ type: 'DateTime', resolve: (entry) => entry.appliedAt }),
    executionMs: t.exposeInt('executionMs'),
    checksumMatches: t.exposeBoolean('checksumMatches'),
  }),
});

builder.queryField('migrations', (t) =>
  t.field({
    type: [MigrationRef],
    description: "The API process's own catalog release (its disk catalog), in order",
    authScopes: { viewer: true },
    resolve: (_root, _args, context) => context.services.catalog.files,
  }),
);
