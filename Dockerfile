# syntax=docker/dockerfile:1
# toolgate: a human-approval gateway for AI-agent tool calls.
#   docker build -t toolgate .
#   docker run -d --init -p 127.0.0.1:8020:8020 -v toolgate-data:/data toolgate
# Bound to loopback like compose.yaml: put a TLS-terminating proxy in front for remote callers.
# The image runs the compiled build (dist/); cli/toolgate.js picks dist/ when src/ is absent, so
# neither tsx nor TypeScript (devDependencies) nor the sources are in the runtime image.

# Node 20: the major version the project is tested on (package.json engines: >=20.19).
ARG NODE_IMAGE=node:20-slim

# ---- build: compile, then keep only production node_modules (better-sqlite3 built for this base) ----
FROM ${NODE_IMAGE} AS build
# better-sqlite3 falls back to building from source (node-gyp) when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY cli ./cli
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && test ! -e node_modules/tsx && test ! -e node_modules/typescript

# ---- runtime: no compilers, no dev tools, non-root, database on a volume ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8020 \
    DATABASE_PATH=/data/toolgate.db
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY cli/toolgate.js ./cli/toolgate.js
COPY drizzle ./drizzle
# /data holds the SQLite file (with its -wal and -shm), first-run-tokens.txt on the first start,
# and, with no toolgate.json, the default filesystem upstream's workspace (./data/workspace
# resolves through the link to /data/workspace). It is created private and owned by the
# unprivileged `node` user (uid 1000) before VOLUME, so a new named volume starts that way.
RUN mkdir -p /data/workspace \
 && chown -R node:node /data \
 && chmod 700 /data \
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
