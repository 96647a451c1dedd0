# syntax=docker/dockerfile:1
# toolgate: a human-approval gateway for AI-agent tool calls.
#   docker build -t toolgate .
#   docker run --init -p 8020:8020 -v toolgate-data:/data toolgate
# The image runs the compiled build (dist/), about 50 MB lighter than running TypeScript through
# tsx as a checkout does; cli/toolgate.js picks dist/ when src/ is absent.

# ---- build: compile, then keep only production node_modules (better-sqlite3 built for this base) ----
FROM node:22-slim AS build
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
 && npm cache clean --force

# ---- runtime: no compilers, non-root, database on a volume ----
FROM node:22-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8020 \
    DATABASE_PATH=/data/toolgate.db
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json package-lock.json ./
COPY cli/toolgate.js ./cli/toolgate.js
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
