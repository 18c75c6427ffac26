# syntax=docker/dockerfile:1
# One image serves every role: `node dist/main.js all|api|worker` and the one-shot
# `node dist/cli/migrate.js control-plane up`. Build: docker build -t tenant-control-plane .

ARG NODE_IMAGE=node:20-bookworm-slim

# --- deps: every dependency, plus the generated Prisma client (postinstall) -----------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# postinstall runs `prisma generate` offline; it needs the schema and prisma.config.ts first.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund

# --- build: compile src/ (including src/generated/prisma) to dist/ ---------------------------
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# src/generated is excluded from the context; the deps stage generated it from prisma/ above,
# and tsc compiles it to dist/generated/prisma with the rest of src/.
RUN npm run build

# --- prod-deps: runtime dependencies only ---------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# The compiled client lives in dist/, so no install script (ours or a dependency's) is needed.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# Tenant backups run pg_dump, pg_restore and psql of the tenant server's major version (a custom
# dump restores only with a pg_restore as new as its pg_dump); the service looks in
# /usr/lib/postgresql/<major>/bin first. Keep PG_CLIENT_MAJOR equal to the tenant servers' major
# (docker-compose.yml runs postgres:16); Debian bookworm itself ships only 15, so the client comes
# from the PostgreSQL project's apt repository, set up by Debian's own postgresql-common script.
ARG PG_CLIENT_MAJOR=16
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common ca-certificates \
 && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_CLIENT_MAJOR}" \
 && apt-get purge -y --auto-remove postgresql-common \
 && rm -rf /var/lib/apt/lists/* \
 && "/usr/lib/postgresql/${PG_CLIENT_MAJOR}/bin/pg_dump" --version
# Memory: two malloc arenas instead of one per thread, and a smaller young generation
# (--max-semi-space-size below) keep each process well under 250 MB at fleet scale
# (bench case B5); `npm run bench` runs the service with these same settings.
ENV NODE_ENV=production \
    PORT=4000 \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=prod-deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
COPY --chown=node:node prisma ./prisma
COPY --chown=node:node migrations ./migrations
# BACKUP_DIR: a volume in docker-compose.yml; created here so a new volume is the node user's.
RUN mkdir -p /var/lib/tenant-control-plane/backups && chown -R node:node /var/lib/tenant-control-plane
USER node
EXPOSE 4000
# Liveness only (/healthz); orchestrators that need readiness probe /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=4", "--max-old-space-size=192", "dist/main.js"]
CMD ["all"]
