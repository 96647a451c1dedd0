import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { AppError } from './core/errors.js';
import type { GrantCaps } from './approvals/grants.js';

// Case-insensitive (`TRUE`, `Off`), as zod's stringbool reads them; the words stay the four pairs.
const booleanFlag = z.stringbool({
  truthy: ['true', '1', 'yes', 'on'],
  falsy: ['false', '0', 'no', 'off'],
  error: 'must be true or false (or 1/0, yes/no, on/off)',
});

/** A number from the environment: only a non-number says "must be a number"; each check says its own rule. */
const numberValue = () => z.coerce.number({ error: (issue) => (issue.code === 'invalid_type' ? 'must be a number' : undefined) });

const positiveInt = numberValue().int('must be a whole number').positive('must be greater than 0');

const intBetween = (min: number, max: number) =>
  numberValue()
    .int('must be a whole number')
    .min(min, `must be between ${min} and ${max}`)
    .max(max, `must be between ${min} and ${max}`);

const nonNegativeInt = numberValue().int('must be a whole number').min(0, 'must be 0 or more');

/** One browser origin: scheme, host and optional port, nothing else (what a browser sends in `Origin`). */
const browserOrigin = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
    } catch {
      return false;
    }
  },
  { error: 'each entry must be an origin like https://console.example.com (scheme, host and optional port; no path, no trailing slash)' },
);

const originList = z
  .string()
  .transform((value) => value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== ''))
  .pipe(z.array(browserOrigin));


const envSchema = z.object({
  PORT: intBetween(0, 65535).default(8020),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_PATH: z.string().min(1).default('./data/toolgate.db'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL (unset: SQLite at DATABASE_PATH)')
    .optional(),
  DATABASE_POOL_SIZE: intBetween(1, 1000).default(10),
  DATABASE_STATEMENT_TIMEOUT: numberValue().min(0, 'must be 0 (no limit) or more seconds').default(30),
  TOOLGATE_CONFIG: z.string().min(1).optional(),
  RBAC_ENABLED: booleanFlag.default(true),
  APPROVAL_WORKFLOW_ENABLED: booleanFlag.default(true),
  APPROVAL_TIMEOUT: numberValue().positive('must be greater than 0').default(300),
  APPROVAL_POLLING_INTERVAL: numberValue()
    .min(0.01, 'must be at least 0.01 seconds')
    .max(60, 'must be at most 60 seconds')
    .default(1),
  APPROVAL_MAX_PENDING: positiveInt.default(50),
  APPROVAL_QUORUM_HIGH: positiveInt.max(20, 'must be at most 20').default(1),
  APPROVAL_QUORUM_CRITICAL: positiveInt.max(20, 'must be at most 20').default(1),
  APPROVAL_ALLOW_SELF: booleanFlag.default(false),
  APPROVAL_RETENTION_DAYS: positiveInt.default(30),
  AUDIT_RETENTION_DAYS: positiveInt.default(90),
  AUDIT_CHECKPOINT_EVERY: positiveInt.default(100),
  SQLITE_GROUP_COMMIT_MAX: positiveInt.max(1000, 'must be at most 1000').default(64),
  SIGNING_KEY_FILE: z.string().min(1).optional(),
  /** The older name of SIGNING_KEY_FILE, from when the key signed only audit checkpoints. */
  AUDIT_SIGNING_KEY: z.string().min(1).optional(),
  RECEIPT_TTL: positiveInt.max(30 * 86_400, 'must be at most 30 days (2592000 seconds)').default(900),
  GRANT_MAX_DURATION_HIGH: nonNegativeInt.max(30 * 86_400, 'must be at most 30 days (2592000 seconds)').default(3600),
  GRANT_MAX_USES_HIGH: positiveInt.max(1_000_000, 'must be at most 1000000').default(100),
  GRANT_MAX_DURATION_CRITICAL: nonNegativeInt.max(30 * 86_400, 'must be at most 30 days (2592000 seconds)').default(0),
  GRANT_MAX_USES_CRITICAL: positiveInt.max(1_000_000, 'must be at most 1000000').default(10),
  AUDIT_CHECKPOINT_FILE: z.string().min(1).optional(),
  TRUST_USER_HEADER: booleanFlag.default(false),
  BODY_LIMIT_BYTES: positiveInt.default(1024 * 1024),
  RATE_LIMIT_PER_MINUTE: nonNegativeInt.default(600),
  AUTH_FAILURE_LIMIT_PER_MINUTE: nonNegativeInt.default(30),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  APPROVAL_MAX_PENDING_PER_USER: positiveInt.optional(),
  ALLOWED_ORIGINS: originList.default([]),
  PUBLIC_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  TRUST_PROXY: intBetween(0, 10).default(0),
  CONSOLE_SESSION_TTL: numberValue().min(60, 'must be at least 60 seconds').max(30 * 24 * 3600, 'must be at most 30 days').default(12 * 3600),
  HTTP_KEEP_ALIVE_TIMEOUT: numberValue().min(1, 'must be at least 1 second').max(3600, 'must be at most 3600 seconds').default(65),
});

export type Env = z.infer<typeof envSchema>;

/** Every variable `toolgate serve` reads, for `--help`. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

export interface Config {
  port: number;
  host: string;
  databasePath: string;
  /** DATABASE_URL: PostgreSQL instead of the SQLite file at databasePath. */
  databaseUrl: string | undefined;
  /** PostgreSQL connections per gateway process. */
  databasePoolSize: number;
  /** PostgreSQL cancels a statement running longer (0: no limit). */
  databaseStatementTimeoutMs: number;
  toolgateConfigPath: string | undefined;
  rbacEnabled: boolean;
  approvalWorkflowEnabled: boolean;
  approvalTimeoutMs: number;
  /**
   * APPROVAL_POLLING_INTERVAL: the pace of the background jobs (`src/approvals/polling-jobs.ts`:
   * the change feed, expiry sweep, dead-instance recovery, async runner, policy reload, socket
   * recheck), the heartbeat's (at most a third of the stale threshold) and the stale threshold,
   * max(5 s, 5 intervals). Retention has its own 5-minute interval.
   */
  pollingIntervalMs: number;
  maxPending: number;
  quorum: { HIGH: number; CRITICAL: number };
  allowSelfApproval: boolean;
  approvalRetentionDays: number;
  auditRetentionDays: number;
  /** Sign a checkpoint of the audit chain's head every this many events (and at shutdown). */
  auditCheckpointEvery: number;
  /** Logical transactions one SQLite COMMIT may carry (group commit); 1 turns it off. */
  sqliteGroupCommitMax: number;
  /**
   * The Ed25519 signing keys (src/signing/key-ring.ts) that sign receipts and audit checkpoints;
   * outside the database, created 0600 on first start; instances given the same file share them.
   */
  signingKeyPath: string;
  /** How long a receipt stays valid after the verdict. */
  receiptTtlMs: number;
  /** The most a standing approval may allow per sensitivity; null: none (CRITICAL unless the operator says so). */
  grantCaps: GrantCaps;
  /** The append-only copy of every checkpoint, one JSON line each. */
  auditCheckpointFile: string;
  trustUserHeader: boolean;
  bodyLimitBytes: number;
  rateLimitPerMinute: number;
  authFailureLimitPerMinute: number;
  logLevel: Env['LOG_LEVEL'];
  /** When set, GET /metrics needs it as a bearer token; unset, /metrics is open on the listen address. */
  metricsToken: string | undefined;
  /** Pending requests one requester may hold at once (default: half of maxPending, at least 10). */
  maxPendingPerUser: number;
  /** Browser origins, besides the gateway's own, that may call state-changing endpoints and open the socket. */
  allowedOrigins: string[];
  /** The URL people reach the gateway at; its origin counts as the gateway's own. */
  publicUrl: string | undefined;
  /** Proxy hops whose X-Forwarded-For entries are trusted for client addresses (0: the socket's address). */
  trustProxy: number;
  /** How long a web console session lasts after sign-in (CONSOLE_SESSION_TTL seconds). */
  consoleSessionTtlMs: number;
  /**
   * HTTP_KEEP_ALIVE_TIMEOUT: how long an idle keep-alive connection stays open. Above the idle
   * timeout of the load balancer in front (60 s on most), so that the balancer, never the gateway,
   * closes an idle connection; Node's 5 s default makes balancers send requests down closing sockets (502s).
   */
  httpKeepAliveTimeoutMs: number;
}

/**
 * Half the global cap, so that one requester always leaves the other half to everyone else; at
 * least 10 so that a small gateway's single agent can still run calls side by side.
 */
function defaultPendingPerUser(maxPending: number): number {
  return Math.min(maxPending, Math.max(10, Math.ceil(maxPending / 2)));
}

/** An invalid environment: the catalogue's `config_invalid`, with each problem naming its variable. */
export class ConfigError extends AppError<'config_invalid'> {
  constructor(readonly problems: string[]) {
    super('config_invalid', `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; an invalid value names its variable. Empty strings count as unset. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message} (got ${JSON.stringify(present[String(issue.path[0])])})`),
    );
  }
  const e = parsed.data;
  const keyPath = e.SIGNING_KEY_FILE ?? e.AUDIT_SIGNING_KEY ?? join(dirname(e.DATABASE_PATH), 'audit-signing.key');
  return {
    port: e.PORT,
    host: e.HOST,
    databasePath: e.DATABASE_PATH,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    databaseStatementTimeoutMs: Math.round(e.DATABASE_STATEMENT_TIMEOUT * 1000),
    toolgateConfigPath: e.TOOLGATE_CONFIG,
    rbacEnabled: e.RBAC_ENABLED,
    approvalWorkflowEnabled: e.APPROVAL_WORKFLOW_ENABLED,
    approvalTimeoutMs: Math.round(e.APPROVAL_TIMEOUT * 1000),
    pollingIntervalMs: Math.round(e.APPROVAL_POLLING_INTERVAL * 1000),
    maxPending: e.APPROVAL_MAX_PENDING,
    quorum: { HIGH: e.APPROVAL_QUORUM_HIGH, CRITICAL: e.APPROVAL_QUORUM_CRITICAL },
    allowSelfApproval: e.APPROVAL_ALLOW_SELF,
    approvalRetentionDays: e.APPROVAL_RETENTION_DAYS,
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    auditCheckpointEvery: e.AUDIT_CHECKPOINT_EVERY,
    sqliteGroupCommitMax: e.SQLITE_GROUP_COMMIT_MAX,
    signingKeyPath: keyPath,
    receiptTtlMs: e.RECEIPT_TTL * 1000,
    grantCaps: {
      HIGH: e.GRANT_MAX_DURATION_HIGH > 0 ? { maxMs: e.GRANT_MAX_DURATION_HIGH * 1000, maxUses: e.GRANT_MAX_USES_HIGH } : null,
      CRITICAL: e.GRANT_MAX_DURATION_CRITICAL > 0 ? { maxMs: e.GRANT_MAX_DURATION_CRITICAL * 1000, maxUses: e.GRANT_MAX_USES_CRITICAL } : null,
    },
    auditCheckpointFile: e.AUDIT_CHECKPOINT_FILE ?? join(dirname(keyPath), 'audit-checkpoints.jsonl'),
    trustUserHeader: e.TRUST_USER_HEADER,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    authFailureLimitPerMinute: e.AUTH_FAILURE_LIMIT_PER_MINUTE,
    logLevel: e.LOG_LEVEL,
    metricsToken: e.METRICS_TOKEN,
    maxPendingPerUser: e.APPROVAL_MAX_PENDING_PER_USER ?? defaultPendingPerUser(e.APPROVAL_MAX_PENDING),
    allowedOrigins: e.ALLOWED_ORIGINS,
    publicUrl: e.PUBLIC_URL,
    trustProxy: e.TRUST_PROXY,
    consoleSessionTtlMs: Math.round(e.CONSOLE_SESSION_TTL * 1000),
    httpKeepAliveTimeoutMs: Math.round(e.HTTP_KEEP_ALIVE_TIMEOUT * 1000),
  };
}

export interface EnvFileRead {
  path: string;
  /** Names taken from the file. */
  applied: string[];
  /** Names in the file that the real environment already set (the environment wins). */
  overridden: string[];
}

/**
 * Reads `.env` from `dir` into `env`, for names the environment does not set: real environment
 * variables win, as with dotenv and Node's --env-file. Returns what it did, or undefined without a file.
 */
export function loadEnvFile(env: Record<string, string | undefined>, dir = process.cwd()): EnvFileRead | undefined {
  const path = resolve(dir, '.env');
  if (!existsSync(path)) return undefined;
  const read: EnvFileRead = { path, applied: [], overridden: [] };
  for (const [name, value] of Object.entries(parseEnv(readFileSync(path, 'utf8')))) {
    if (value === undefined) continue;
    if (env[name] !== undefined) read.overridden.push(name);
    else {
      env[name] = value;
      read.applied.push(name);
    }
  }
  return read;
}
