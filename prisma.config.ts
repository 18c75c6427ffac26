import { defineConfig } from 'prisma/config';

// The URL is only read by Prisma CLI commands that talk to a database (none run here: the DDL
// comes from migrations/control_plane). The runtime client gets its URL from src/config.ts.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  datasource: {
    url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/control_plane',
  },
});
