import { createAdaptorServer, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AppEnv } from './http/context.js';
import { randomUUID } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Server as HttpServer } from 'node:http';
import { isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { createApp } from './app.js';
import { ChangeFeed, type ChangeHints } from './approvals/change-feed.js';
import { createApprovalCore, type ApprovalCore, type Clock, type IdSource } from './approvals/core.js';
import { InstanceRegistry, livenessTiming } from './approvals/instance-registry.js';
import { gatewayJobs, PollingJobs } from './approvals/polling-jobs.js';
import { createAuditLog } from './audit/audit.service.js';
import { Checkpointer } from './audit/checkpoints.js';
import { KeyRing } from './signing/key-ring.js';
import { ReceiptSigner } from './receipts/receipts.js';
import { verifyAuditLog } from './audit/verification.js';
import { AuthService } from './auth/auth.service.js';
import { UserAdmin } from './auth/users.service.js';
import { ConsoleSessions } from './auth/sessions.service.js';
import { loadConsoleAssets } from './console/assets.js';
import { loadConfig, ConfigError, type Config, type EnvFileRead } from './config.js';
import { isSeeded, seedDatabase, type IssuedToken } from './db/seed.js';
import { openStore, type GatewayStore } from './db/open-store.js';
import { PgChangeHints } from './db/pg-change-hints.js';
import { SharedWindows } from './limits/shared-windows.js';
import type { Persistence } from './core/persistence.js';
import { ApprovalBus } from './events/bus.js';
import { createLogger, type Logger } from './logger.js';
import { APPROVAL_MANAGE, APPROVAL_VIEW, PolicyService } from './policy/policy.service.js';
import { loadToolgateFile, type ToolgateFile } from './tools/gateway-file.js';
import { UpstreamManager, type UpstreamTransportFactory } from './tools/upstreams.js';
import { McpFrontDoor } from './mcp/front-door.js';
import { rateLimit } from './http/rate-limit.js';
import { ApproverHub, MAX_FRAME_BYTES } from './ws/approver-hub.js';
import { createMetrics } from './metrics/metrics.js';
import { requestLog } from './http/request-log.js';
import { Retention } from './approvals/retention.js';
import { createNotifications, type Notifications } from './notify/notifications.js';
import { notifySettings, type NotifySettings } from './notify/receivers.js';
import { SlackInteractions } from './notify/slack-interactions.js';
import { slackRoutes } from './notify/slack.routes.js';

export interface GatewayOptions {
  config: Config;
  logger?: Logger;
  clock?: Clock;
  ids?: IdSource;
  instanceId?: string;
  /** Upstreams and policy; read from TOOLGATE_CONFIG / ./toolgate.json when not given. */
  toolgateFile?: ToolgateFile;
  /** Connects upstreams another way than their config says (tests: the fixture server in-process). */
  upstreamTransport?: UpstreamTransportFactory;
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
  /**
   * Called once a peer has declared this instance dead and it has stopped serving (every call
   * gets 503); `toolgate serve` then exits non-zero so that a supervisor restarts it under a new id.
   */
  onFenced?: () => void;
  /** Where toolgate.json's `secretEnv`-style references are read (default: this process's environment). */
  env?: Record<string, string | undefined>;
}

export interface Gateway {
  url: string;
  /** The Hono app, for tests that walk its routes (the OpenAPI document must list them all). */
  app: Hono<AppEnv>;
  port: number;
  instanceId: string;
  store: Persistence;
  /** The approval core: gate, requests, executor, waiters, views. */
  approvals: ApprovalCore;
  hub: ApproverHub;
  /** User and token management in this process: its changes reach callers and sockets here at once. */
  users: UserAdmin;
  /** Web console sessions in this process: ending one closes its sockets here at once. */
  sessions: ConsoleSessions;
  bus: ApprovalBus;
  upstreams: UpstreamManager;
  /** The background jobs (heartbeat, recovery, change feed, expiry, async runs, policy, sockets, retention). */
  jobs: PollingJobs;
  /** Webhooks and Slack: the outbox's delivery worker and escalation (docs/notifications.md). */
  notifications: Notifications;
  /** Graceful stop: refuse new work, answer waiting callers 503, close sockets, flush, close the file. */
  close(): Promise<void>;
  /** Stops listening and drops everything without any cleanup in the database, as a crash would. */
  crash(): Promise<void>;
}

/** On PostgreSQL, where NOTIFY brings changes at once, the change feed polls every this many polling intervals. */
export const FEED_SAFETY_NET_INTERVALS = 5;

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

  // The port is taken before anything else, above all before a first-run seed: a busy port must
  // not use up the tokens that are shown only once. Until the app is wired, callers get 503.
  let app: Hono<AppEnv> | undefined;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const server: ServerType = createAdaptorServer({
    fetch: (request: Request, env: unknown) => (app ? app.fetch(request, env) : startingUp()),
    hostname: config.host,
    websocket: { server: wss },
  });
  keepConnectionsAlive(server as HttpServer, config.httpKeepAliveTimeoutMs);
  await listen(server, config.port, config.host);

  let store: GatewayStore | undefined;
  let upstreams: UpstreamManager;
  let file: ToolgateFile;
  let notify: NotifySettings;
  let freshlySeeded = false;
  try {
    store = await openStore(config);
    if (!(await isSeeded(store))) {
      const tokens = await seedFirstRun(store, clock.now());
      if (tokens) {
        freshlySeeded = true;
        options.onSeeded?.(tokens);
      }
    }
    file = options.toolgateFile ?? loadToolgateFile(config.toolgateConfigPath).file;
    notify = notifySettings(file, options.env ?? process.env);
    upstreams = new UpstreamManager(file.upstreams, logger, options.upstreamTransport);
    await upstreams.start();
  } catch (err) {
    await store?.close();
    await new Promise((resolve) => server.close(resolve));
    throw err;
  }
  const db = store;

  const policy = await PolicyService.load(store.policy, {
    overrides: file.policy,
    rolesBySensitivity: file.defaults.rolesBySensitivity ?? {},
    defaultSensitivity: file.defaults.sensitivity,
  });
  const bus = new ApprovalBus();
  const metrics = createMetrics({
    pendingRequests: () => store.approvals.countPending(),
    approversOnline: () => hub.online(),
    token: config.metricsToken,
    processMetrics: options.processMetrics ?? false,
  });
  const keys = KeyRing.openOrCreate(config.signingKeyPath, clock);
  const receipts = new ReceiptSigner(keys, { lifetimeMs: config.receiptTtlMs, issuer: config.publicUrl ?? 'toolgate' });
  const checkpointer = await Checkpointer.open({
    store,
    key: keys,
    clock,
    instanceId,
    every: config.auditCheckpointEvery,
    logger,
    filePath: config.auditCheckpointFile,
  });
  // On PostgreSQL the gateways wake each other right after each commit (NOTIFY); the change feed's
  // polling stays as the safety net behind it, at a slower pace.
  const hints: ChangeHints | undefined = store.kind === 'postgres' ? new PgChangeHints(store.client, logger) : undefined;
  const gatewayAudit = createAuditLog({
    clock,
    instanceId,
    onAppend: (seq) => {
      metrics.auditAppended();
      checkpointer.noteAppend(seq);
    },
    onCommitted: hints && ((seqs) => hints.announce({ instanceId, ...seqs })),
  });
  // Every audit event that announces something to a receiver writes its outbox rows in its own transaction.
  const notifications = createNotifications({
    settings: notify,
    store,
    audit: gatewayAudit,
    clock,
    ids,
    instanceId,
    logger,
    publicUrl: config.publicUrl,
    pollingIntervalMs: config.pollingIntervalMs,
    keepFinishedMs: config.approvalRetentionDays * 86_400_000,
    registry: metrics.registry,
  });
  const { audit } = notifications;
  const approvals = createApprovalCore({
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
    receipts,
  });
  if (!config.approvalWorkflowEnabled) {
    // Rollback path: nobody will decide these any more; say so instead of leaving callers hanging.
    const expired = await approvals.requests.expireAllPending('approval workflow disabled');
    if (expired > 0) logger.warn({ expired }, 'expired pending requests left from before: the approval workflow is disabled');
  }
  const auth = new AuthService(store.identity, {
    trustUserHeader: config.trustUserHeader,
    clock,
    mayHoldSession: (role) => policy.hasPermission(role, APPROVAL_VIEW),
  });
  const hub = new ApproverHub({
    approvals,
    auth,
    policy,
    bus,
    logger,
    trustUserHeader: config.trustUserHeader,
    trustProxy: config.trustProxy,
    publicUrl: config.publicUrl,
    onAuthFailure: (address) => limiter.recordAuthFailure(address),
    ...(options.pingIntervalMs ? { pingIntervalMs: options.pingIntervalMs } : {}),
    ...(options.authTimeoutMs ? { authTimeoutMs: options.authTimeoutMs } : {}),
  });
  const sessions = new ConsoleSessions({
    store,
    auth,
    audit,
    clock,
    ids,
    ttlMs: config.consoleSessionTtlMs,
    mayHoldSession: (role) => policy.hasPermission(role, APPROVAL_VIEW),
    onEnded: (userId) => hub.revalidate(userId),
  });
  const users = new UserAdmin({
    store,
    audit,
    clock,
    onChanged: async ({ userId, cancelled }) => {
      await approvals.requests.resolvedHere(cancelled);
      await hub.revalidate(userId);
    },
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
    limitToolCalls: (c, principal, n) => limiter.takeToolCalls(c, principal, n),
  });
  const retention = new Retention({
    store,
    clock,
    logger,
    approvalRetentionDays: config.approvalRetentionDays,
    auditRetentionDays: config.auditRetentionDays,
  });
  const liveness = livenessTiming(config.pollingIntervalMs, options.instanceStaleAfterMs);
  const registry = new InstanceRegistry({
    store,
    clock,
    logger,
    instanceId,
    ...liveness,
    // A shared PostgreSQL spans hosts (and containers, whose host names and pids can repeat): only heartbeats tell.
    probeLocalPids: store.kind === 'sqlite',
    onFenced: () => {
      // Its callers were cancelled and its runs recovered by a peer: refuse everything, let go of everyone.
      void jobs.stop();
      void approvals.shutdown();
      hub.close(undefined, 'gateway declared dead by a peer');
      options.onFenced?.();
    },
  });
  const feed = new ChangeFeed({ store, bus, views: approvals.views, instanceId, onResolvedElsewhere: (id) => approvals.requests.resolvedElsewhere(id) });
  const jobs = new PollingJobs({
    registry,
    clock,
    logger,
    pollingIntervalMs: config.pollingIntervalMs,
    staleAfterMs: liveness.staleAfterMs,
    jobs: [
      ...gatewayJobs({
        registry,
        core: approvals,
        feed,
        feedEveryMs: hints ? FEED_SAFETY_NET_INTERVALS * config.pollingIntervalMs : undefined,
        policy,
        retention,
        revalidateSessions: () => hub.revalidate(),
        logger,
      }),
      ...notifications.jobs,
    ],
  });

  const slack = new SlackInteractions({ slack: notify.slack, store, requests: approvals.requests, views: approvals.views, clock, logger });
  const inflight = { count: 0 };
  const limiter = rateLimit({
    now: () => clock.now(),
    toolCallsPerMinute: config.rateLimitPerMinute,
    authFailuresPerMinute: config.authFailureLimitPerMinute,
    trustProxy: config.trustProxy,
    // On PostgreSQL a token's budget is shared by every gateway; on SQLite each process counts its own.
    sharedToolCalls:
      store.kind === 'postgres' ? new SharedWindows({ store, onCleanupError: (err) => logger.warn({ err }, 'could not delete finished rate-limit windows') }) : undefined,
  });
  app = createApp({
    store,
    auth,
    policy,
    approvals,
    tools: upstreams,
    logger,
    settings: config,
    console: { sessions, assets: loadConsoleAssets() },
    verifyAudit: () => verifyAuditLog(store, { key: keys, keyPath: config.signingKeyPath, filePath: config.auditCheckpointFile, now: clock.now() }),
    approversOnline: () => hub.online(),
    receipts,
    modules: [() => hub.app(), ({ callerAuth }) => mcp.app(callerAuth), () => metrics.app(), () => slackRoutes(slack)],
    inflight,
    observers: [metrics.recordRequest, requestLog({ logger })],
    limits: { authFailures: limiter.middleware, probes: limiter.probes, toolCalls: limiter.toolCalls },
  });

  await feed.start();
  const feedFailed = (err: unknown) => logger.error({ err }, 'the change feed could not read the audit log');
  const stopHints = await hints?.listen({
    onHint: (hint) => {
      if (hint.instanceId !== instanceId) feed.wake(hint).catch(feedFailed);
    },
    // At start and after every reconnect of the listening connection: hints may have been lost.
    onConnected: () => void feed.pull().catch(feedFailed),
  });
  await jobs.start();
  notifications.start();
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (!freshlySeeded) logger.info('API tokens are shown only when they are made; issue a new one with `toolgate users token <user>`');
  await warnAboutApprovers(store, policy, config, logger);
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
    users,
    sessions,
    bus,
    upstreams,
    jobs,
    notifications,
    async close() {
      if (closed) return;
      closed = true;
      const stoppingJobs = jobs.stop();
      const stopped = stopListening();
      const cancelled = await approvals.shutdown();
      hub.close();
      wss.close();
      // Let in-flight requests (the 503 answers among them) finish, for up to 5 s.
      const deadline = Date.now() + 5000;
      while (inflight.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setImmediate(r));
      await mcp.close();
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await stopped;
      await stoppingJobs;
      await approvals.recoverInstance(instanceId, 'gateway shut down');
      await notifications.stop();
      await registry.markStopped();
      await checkpointer.checkpoint({ force: true });
      checkpointer.stop();
      await stopHints?.();
      await upstreams.close();
      if (db.kind === 'sqlite') db.admin.checkpointWal();
      await db.close();
      logger.info({ cancelled }, 'toolgate stopped');
    },
    async crash() {
      if (closed) return;
      closed = true;
      void jobs.stop();
      void notifications.worker.abort.abort();
      checkpointer.stop();
      hub.close();
      wss.close();
      // The file is closed first, so nothing that is still in flight can write to it any more.
      await db.close();
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

/** Raised when the listen port is taken; `toolgate serve` answers it with one line. */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} is in use (set PORT)`);
    this.name = 'PortInUseError';
  }
}

/**
 * An idle keep-alive connection stays open for `timeoutMs`, longer than the load balancer in front
 * keeps it, so the balancer closes it first and never sends a request down a socket the gateway is
 * closing. The time allowed for a request's headers stays above it, as Node requires.
 */
export function keepConnectionsAlive(server: HttpServer, timeoutMs: number) {
  server.keepAliveTimeout = timeoutMs;
  server.headersTimeout = timeoutMs + 5000;
  if (server.requestTimeout > 0 && server.requestTimeout < server.headersTimeout) server.requestTimeout = server.headersTimeout;
}

function listen(server: ServerType, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(port) : err);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function startingUp(): Response {
  return Response.json({ error: { code: 'shutting_down', message: 'the gateway is starting; try again shortly' } }, { status: 503, headers: { 'retry-after': '1' } });
}

/**
 * A requester never approves their own request, so with a single approver that approver's own
 * HIGH and CRITICAL calls wait until they expire; with none, nobody's are ever approved.
 */
/**
 * Seeds an empty database. Several gateways starting at once on a new shared database (PostgreSQL)
 * may race here: the one whose seed commits first prints the tokens; the others' seeds fail on the
 * unique user ids, roll back whole, and find the database seeded. Undefined then.
 */
async function seedFirstRun(store: Persistence, now: number): Promise<IssuedToken[] | undefined> {
  try {
    return await seedDatabase(store, { now });
  } catch (err) {
    if (await isSeeded(store)) return undefined;
    throw err;
  }
}

async function warnAboutApprovers(store: Persistence, policy: PolicyService, config: Config, logger: Logger) {
  if (!config.approvalWorkflowEnabled) return;
  const approvers = (await store.identity.listUsers()).filter((u) => u.active && policy.hasPermission(u.role, APPROVAL_MANAGE));
  if (approvers.length === 0) {
    logger.warn('no active user may decide approvals: HIGH and CRITICAL calls will expire; add one with `toolgate users add <id> --role admin`');
  } else if (approvers.length === 1 && !config.allowSelfApproval) {
    const only = approvers[0]!.id;
    logger.warn(
      { approver: only },
      `${only} is the only approver: their own HIGH and CRITICAL calls can never be approved (APPROVAL_ALLOW_SELF=false); add another with \`toolgate users add <id> --role admin\``,
    );
  }
}

/** Where a first start without a terminal leaves the seeded tokens: beside the database, private. */
export function firstRunTokensPath(databasePath: string): string {
  return resolve(dirname(databasePath), 'first-run-tokens.txt');
}

function tokenLines(tokens: IssuedToken[]): string[] {
  return tokens.map((t) => `  ${t.user.padEnd(11)} (${t.role.padEnd(9)})  ${t.token}`);
}

/**
 * First-start tokens never go to the log stream (logs are shipped and kept): on a terminal they
 * are printed there; without one they go to a 0600 file in the data folder and only its path is logged.
 */
function showFirstRunTokens(tokens: IssuedToken[], config: Config, logger: Logger) {
  if (tokens.length === 0) return;
  if (process.stdout.isTTY) {
    const lines = ['', 'First start: the database was seeded. These tokens are shown once; keep them safe.', ...tokenLines(tokens), ''];
    process.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  const path = firstRunTokensPath(config.databasePath);
  const text = [
    `# toolgate first start, ${new Date().toISOString()}: the seeded users' tokens, shown nowhere else.`,
    '# Keep them somewhere safe, then delete this file.',
    ...tokenLines(tokens),
    '',
  ].join('\n');
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600); // the mode above applies only when the file is new
  logger.warn({ file: path }, 'first start: the seeded users\' tokens were written to this file (mode 0600); read them, then delete it');
}

/** `toolgate serve`: reads the environment, starts, and stops cleanly on SIGTERM/SIGINT. */
export async function main(env: Record<string, string | undefined> = process.env, envFile?: EnvFileRead): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      const source = envFile ? ` (the environment and ${envFile.path}, which set ${envFile.applied.join(', ') || 'nothing new'})` : '';
      process.stderr.write(`toolgate: ${err.message}\n${source ? `read from${source}\n` : ''}`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (envFile) logger.info({ file: envFile.path, applied: envFile.applied, overriddenByEnvironment: envFile.overridden }, 'read .env');
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      config,
      logger,
      onSeeded: (tokens) => showFirstRunTokens(tokens, config, logger),
      processMetrics: true,
      onFenced: () => setImmediate(() => stop('declared dead by a peer gateway', 1)),
    });
  } catch (err) {
    process.stderr.write(err instanceof PortInUseError ? `toolgate: ${err.message}\n` : `toolgate: could not start: ${(err as Error).message}\n`);
    logger.flush?.();
    process.exit(1);
  }
  let stopping = false;
  const stop = (why: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`toolgate: ${why}, shutting down\n`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    gateway.close().then(
      () => process.exit(code),
      (err) => {
        process.stderr.write(`toolgate: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM received'));
  process.on('SIGINT', () => stop('SIGINT received'));
}
