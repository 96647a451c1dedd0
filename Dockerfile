# syntax=docker/dockerfile:1
# toolgate: a human-approval gateway for AI-agent tool calls.
#   docker build -t toolgate .
#   docker run --init -p 8020:8020 -v toolgate-data:/data toolgate
# The CLI runs TypeScript through tsx (a runtime dependency), so there is no compile step:
# the image carries src/, cli/ and drizzle/ as they are in the repository.

# ---- build: production node_modules, with better-sqlite3 compiled for this base image ----
FROM node:22-slim AS build
# better-sqlite3 falls back to building from source (node-gyp) when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime: no compilers, non-root, database on a volume ----
FROM node:22-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8020 \
    DATABASE_PATH=/data/toolgate.db
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY cli ./cli
COPY src ./src
COPY drizzle ./drizzle
# /data holds the SQLite file (with its -wal and -shm) and, with no toolgate.json, the default
# filesystem upstream's workspace (./data/workspace resolves through the link to /data/workspace).
# It is created owned by the unprivileged `node` user (uid 1000) before VOLUME, so a new named
# volume starts with that owner.
RUN mkdir -p /data/workspace \
 && chown -R node:node /data \
 && ln -s /data /app/data
USER node
VOLUME ["/data"]
EXPOSE 8020
# No curl in slim images: Node's own fetch asks /health (503 when the database is unreachable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8020)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The entrypoint is the toolgate CLI, so `docker run ... toolgate db check` works too.
ENTRYPOINT ["node", "cli/toolgate.js"]
CMD ["serve"]
