import { builder } from '../builder.js';
import { connectionCost } from '../cost.js';
import { checkedPageSize } from '../ids.js';
import { cleanQuery } from '../prisma-query.js';
import { MigrationRef } from './migration.js';

const RELEASES_PAGE = { defaultSize: 20, maxSize: 100 } as const;

export const CatalogReleaseRef = builder.prismaNode('CatalogRelease', {
  id: { field: 'id' },
  description: 'An immutable snapshot of a tenant catalog directory; a run executes exactly one',
  fields: (t) => ({
    checksum: t.exposeString('checksum', {
      description: 'SHA-256 over the ordered (version, name, kind, file checksum) of its files',
    }),
    latestVersion: t.exposeString('latestVersion', { nullable: true }),
    migrations: t.field({
      type: [MigrationRef],
      description: 'Its migrations in order, read once per process and kept in memory',
      resolve: async (release, _args, context) =>
        (await context.services.catalogs.forRelease(release.id)).files,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryField('catalogReleases', (t) =>
  t.prismaConnection(
    {
      type: 'CatalogRelease',
      cursor: 'id',
      description: 'Published catalog releases, newest first',
      authScopes: { viewer: true },
      defaultSize: RELEASES_PAGE.defaultSize,
      maxSize: checkedPageSize(RELEASES_PAGE.maxSize),
      complexity: connectionCost(RELEASES_PAGE.defaultSize, RELEASES_PAGE.maxSize),
      resolve: (query, _root, _args, context) =>
        context.db.catalogRelease.findMany({
          ...cleanQuery(query),
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        }),
      totalCount: (_connection, _args, context) => context.db.catalogRelease.count(),
    },
    { name: 'CatalogReleaseConnection' },
    { name: 'CatalogReleaseEdge' },
  ),
);
