import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AppEnv } from './http/context.js';
import { randomUUID } from 'node:crypto';
import { isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { createApp } from './app.js';
import { ApprovalService, type Clock, type IdSource } from './approvals/approvals.service.js';
import { Sweeper } from './approvals/sweeper.js';
import { createAuditLog } from './audit/audit.service.js';
import { AuthService } from './auth/auth.service.js';
import { loadConfig, ConfigError, type Config } from './config.js';
import { openDatabase } from './db/client.js';
import { isSeeded, seedDatabase, type IssuedToken } from './db/seed.js';
import { Store } from './db/store.js';
import { ApprovalBus } from './events/bus.js';
import { createLogger, type Logger } from './logger.js';
import { PolicyService } from './policy/policy.service.js';
import { loadToolgateFile, type ToolgateFile } from './tools/tools.config.js';
import { UpstreamManager } from './tools/upstreams.js';
import { McpFrontDoor } from './mcp/mcp.routes.js';
import { rateLimit } from './http/rate-limit.js';
import { ApproverHub, MAX_FRAME_BYTES, WS_PATH } from './ws/approvals.ws.js';
import { createMetrics, METRICS_PATH } from './metrics/metrics.js';
import { requestLog } from './http/request-log.js';
import { docsRoutes } from './http/openapi.js';
import { Retention } from './approvals/retention.js';

export interface GatewayOptions {
  config: Config;
  logger?: Logger;
  clock?: Clock;
  ids?: IdSource;
  instanceId?: string;
  /** Upstreams and policy; read from TOOLGATE_CONFIG / ./toolgate.json when not given. */
  toolgateFile?: ToolgateFile;
  /** Called once with the tokens of a first-run seed. */
  onSeeded?: (tokens: IssuedToken[]) => void;
  pingIntervalMs?: number;
  /** How long an approver socket may stay open without authenticating (default 5 s). */
  authTimeoutMs?: number;
  /** How often an MCP call waiting for approval sends progress (default 5 s). */
  mcpProgressIntervalMs?: number;
  /** How long another instance may miss heartbeats before it is presumed dead. */
  instanceStaleAfterMs?: number;
  /** Node process metrics (memory, GC, event loop) on /metrics; `toolgate serve` turns them on. */
  processMetrics?: boolean;
}

export interface Gateway {
  url: string;
  /** The Hono app, for tests that walk its routes (the OpenAPI document must list them all). */
  app: Hono<AppEnv>;
  port: number;
  instanceId: string;
  store: Store;
  approvals: ApprovalService;
  hub: ApproverHub;
  bus: ApprovalBus;
  upstreams: UpstreamManager;
  sweeper: Sweeper;
  /** Graceful stop: refuse new work, answer waiting callers 503, close sockets, flush, close the file. */
  close(): Promise<void>;
  /** Stops listening and drops everything without any cleanup in the database, as a crash would. */
  crash(): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now() };
export const randomIds: IdSource = { uuid: () => randomUUID() };

/** The composition root: wires every service and starts listening. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const ids = options.ids ?? randomIds;
  const instanceId = options.instanceId ?? randomUUID();

  warnIfOpenOnTheNetwork(config, logger);

  const handle = openDatabase(config.databasePath);
  const store = new Store(handle);
  if (!isSeeded(store)) {
    const tokens = seedDatabase(store, { now: clock.now() });
    options.onSeeded?.(tokens);
  }

  const file = options.toolgateFile ?? loadToolgateFile(config.toolgateConfigPath).file;
  const upstreams = new UpstreamManager(file.upstreams, logger);
  await upstreams.start();

  const policy = new PolicyService(store, {
    overrides: file.policy,
    rolesBySensitivity: file.defaults.rolesBySensitivity ?? {},
    defaultSensitivity: file.defaults.sensitivity,
  });
  const bus = new ApprovalBus();
  const metrics = createMetrics({
    pendingRequests: () => store.countPending(),
    approversOnline: () => hub.online(),
    token: config.metricsToken,
    processMetrics: options.processMetrics ?? false,
  });
  const audit = createAuditLog({ store, clock, instanceId, onAppend: metrics.auditAppended });
  const approvals = new ApprovalService({
    store,
    audit,
    bus,
    policy,
    tools: upstreams,
    clock,
    ids,
    logger,
    instanceId,
    settings: config,
    metrics: metrics.approvals,
  });
  if (!config.approvalWorkflowEnabled) {
    // Rollback path: nobody will decide these any more; say so instead of leaving callers hanging.
    const expired = approvals.expireAllPending('approval workflow disabled');
    if (expired > 0) logger.warn({ expired }, 'expired pending requests left from before: the approval workflow is disabled');
  }
  const auth = new AuthService(store, { trustUserHeader: config.trustUserHeader });
  const hub = new ApproverHub({
    approvals,
    auth,
    policy,
    bus,
    logger,
    trustUserHeader: config.trustUserHeader,
    onAuthFailure: (address) => limiter.recordAuthFailure(address),
    ...(options.pingIntervalMs ? { pingIntervalMs: options.pingIntervalMs } : {}),
    ...(options.authTimeoutMs ? { authTimeoutMs: options.authTimeoutMs } : {}),
  });
  const mcp = new McpFrontDoor({
    approvals,
    tools: upstreams,
    policy,
    clock,
    logger,
    rbacEnabled: config.rbacEnabled,
    approvalWorkflowEnabled: config.approvalWorkflowEnabled,
    progressIntervalMs: options.mcpProgressIntervalMs,
  });
  const retention = new Retention({
    store,
    clock,
    logger,
    approvalRetentionDays: config.approvalRetentionDays,
    auditRetentionDays: config.auditRetentionDays,
  });
  const sweeper = new Sweeper({
    store,
    approvals,
    policy,
    clock,
    logger,
    instanceId,
    pollingIntervalMs: config.pollingIntervalMs,
    extraTasks: [retention.tick],
    ...(options.instanceStaleAfterMs ? { staleAfterMs: options.instanceStaleAfterMs } : {}),
  });

  const inflight = { count: 0 };
  const limiter = rateLimit({
    toolCallsPerMinute: config.rateLimitPerMinute,
    authFailuresPerMinute: config.authFailureLimitPerMinute,
    trustProxy: config.trustUserHeader,
  });
  const app = createApp({
    store,
    auth,
    policy,
    approvals,
    tools: upstreams,
    logger,
    settings: config,
    approversOnline: () => hub.online(),
    selfAuthenticatingPaths: [WS_PATH, METRICS_PATH],
    extraRoutes: [(a) => hub.routes(a), (a) => mcp.routes(a), (a) => metrics.routes(a), (a) => docsRoutes(a)],
    inflight,
    observers: [metrics.recordRequest, requestLog({ logger, quietPaths: ['/health', METRICS_PATH] })],
    middleware: [
      limiter.middleware,
    ],
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host, websocket: { server: wss } }, () => resolve(s));
  });
  sweeper.start();
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, instanceId, rbac: config.rbacEnabled, approvalWorkflow: config.approvalWorkflowEnabled }, 'toolgate listening');

  let closed = false;
  const stopListening = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    });

  return {
    url,
    app,
    port,
    instanceId,
    store,
    approvals,
    hub,
    bus,
    upstreams,
    sweeper,
    async close() {
      if (closed) return;
      closed = true;
      sweeper.stop();
      const stopped = stopListening();
      const cancelled = approvals.shutdown();
      hub.close();
      wss.close();
      // Let in-flight requests (the 503 answers among them) finish, for up to 5 s.
      const deadline = Date.now() + 5000;
      while (inflight.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setImmediate(r));
      await mcp.close();
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await stopped;
      approvals.recoverInstance(instanceId, 'gateway shut down');
      store.markInstanceStopped(instanceId, clock.now());
      await upstreams.close();
      handle.sqlite.pragma('wal_checkpoint(TRUNCATE)');
      handle.close();
      logger.info({ cancelled }, 'toolgate stopped');
    },
    async crash() {
      if (closed) return;
      closed = true;
      sweeper.stop();
      hub.close();
      wss.close();
      // The file is closed first, so nothing that is still in flight can write to it any more.
      handle.close();
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await stopListening();
      await upstreams.close();
    },
  };
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return isIPv6(h) && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(h);
}

/**
 * The development switches are only safe when nobody else can reach the gateway: on any other
 * address they are said loudly at start, as Vault does for its dev server.
 */
function warnIfOpenOnTheNetwork(config: Config, logger: Logger) {
  if (isLoopbackHost(config.host)) return;
  const off = [!config.rbacEnabled && 'RBAC_ENABLED=false', !config.approvalWorkflowEnabled && 'APPROVAL_WORKFLOW_ENABLED=false'].filter(Boolean);
  if (off.length === 0) return;
  const consequences = [
    !config.rbacEnabled && 'anyone who can reach it may call every tool without a token',
    !config.approvalWorkflowEnabled && 'HIGH and CRITICAL tools run without a human approving them',
  ].filter(Boolean);
  logger.warn(
    { host: config.host, rbac: config.rbacEnabled, approvalWorkflow: config.approvalWorkflowEnabled },
    `SECURITY WARNING: ${off.join(' and ')} on the non-loopback address ${config.host}: ${consequences.join('; ')}. ` +
      'These settings are for development only; listen on 127.0.0.1 or turn them back on.',
  );
}

/** `toolgate serve`: reads the environment, starts, and stops cleanly on SIGTERM/SIGINT. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`toolgate: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  let gateway: Gateway;
  try {
    gateway = await startGateway({ config, onSeeded: printFirstRunTokens, processMetrics: true });
  } catch (err) {
    process.stderr.write(`toolgate: could not start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`toolgate: ${signal} received, shutting down\n`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    gateway.close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`toolgate: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function printFirstRunTokens(tokens: IssuedToken[]) {
  if (tokens.length === 0) return;
  const lines = [
    '',
    'First start: the database was seeded. These tokens are shown once; keep them safe.',
    ...tokens.map((t) => `  ${t.user.padEnd(11)} (${t.role.padEnd(9)})  ${t.token}`),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
