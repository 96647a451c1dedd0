import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/** Times are stored as integer milliseconds since the epoch (UTC). */

export const roles = sqliteTable('roles', {
  name: text('name').primaryKey(),
  description: text('description').notNull().default(''),
  createdAt: integer('created_at').notNull(),
});

/** A role's grants: `approval.view`, `approval.manage`, or `tool:<name or glob>`. */
export const rolePermissions = sqliteTable(
  'role_permissions',
  {
    role: text('role')
      .notNull()
      .references(() => roles.name, { onDelete: 'cascade' }),
    permission: text('permission').notNull(),
  },
  (t) => [primaryKey({ columns: [t.role, t.permission] })],
);

/** Sensitivity per tool name or glob (`fs.*`). */
export const toolPolicies = sqliteTable('tool_policies', {
  tool: text('tool').primaryKey(),
  sensitivity: text('sensitivity', { enum: ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] }).notNull(),
  description: text('description').notNull().default(''),
});

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  role: text('role')
    .notNull()
    .references(() => roles.name),
  active: integer('active', { mode: 'boolean' }).notNull().default(true),
  createdAt: integer('created_at').notNull(),
  disabledAt: integer('disabled_at'),
});

export const apiTokens = sqliteTable(
  'api_tokens',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** SHA-256 of the token, hex. The token itself is never stored. */
    tokenHash: text('token_hash').notNull(),
    /** The first characters of the token, to tell tokens apart in listings. */
    prefix: text('prefix').notNull(),
    createdAt: integer('created_at').notNull(),
    revokedAt: integer('revoked_at'),
  },
  (t) => [uniqueIndex('api_tokens_hash_idx').on(t.tokenHash), index('api_tokens_user_idx').on(t.userId)],
);

/**
 * Web console sessions: an approver's token exchanged at sign-in for a random session secret, held
 * by the browser in an HttpOnly cookie. Only the secret's SHA-256 is stored.
 */
export const consoleSessions = sqliteTable(
  'console_sessions',
  {
    /** Public id, for listing and revoking (never the secret). */
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    secretHash: text('secret_hash').notNull(),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    revokedAt: integer('revoked_at'),
    /** The client address that signed in, and its user agent (trimmed), for `toolgate sessions list`. */
    address: text('address').notNull().default(''),
    userAgent: text('user_agent').notNull().default(''),
  },
  (t) => [uniqueIndex('console_sessions_hash_idx').on(t.secretHash), index('console_sessions_user_idx').on(t.userId)],
);

export const approvalRequests = sqliteTable(
  'approval_requests',
  {
    id: text('id').primaryKey(),
    shortId: text('short_id').notNull(),
    tool: text('tool').notNull(),
    arguments: text('arguments').notNull(),
    requesterId: text('requester_id').notNull(),
    requesterRole: text('requester_role').notNull(),
    /** The API token that made the request (api_tokens.id); null for X-User-ID and anonymous callers. No foreign key: a reseed deletes tokens, and the id must still say which one it was. */
    tokenId: integer('token_id'),
    sensitivity: text('sensitivity', { enum: ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] }).notNull(),
    mode: text('mode', { enum: ['wait', 'async', 'decision'] }).notNull(),
    status: text('status', { enum: ['pending', 'approved', 'rejected', 'expired', 'cancelled'] }).notNull(),
    statusReason: text('status_reason'),
    requiredApprovals: integer('required_approvals').notNull(),
    /** The gateway instance holding a `wait` caller's connection. */
    instanceId: text('instance_id'),
    requestedAt: integer('requested_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    decidedAt: integer('decided_at'),
    executionStatus: text('execution_status', {
      enum: ['none', 'pending', 'running', 'succeeded', 'failed', 'interrupted'],
    })
      .notNull()
      .default('none'),
    executionInstanceId: text('execution_instance_id'),
    executionStartedAt: integer('execution_started_at'),
    executionFinishedAt: integer('execution_finished_at'),
    executionError: text('execution_error'),
    result: text('result'),
    /** SHA-256 (hex) of the canonical call: tool, arguments, requester, policy version (approvals/binding.ts). Null on requests made before binding. */
    callHash: text('call_hash'),
    /** The version of the effective policy the request was made under. */
    policyVersion: text('policy_version'),
    /** The standing approval that allowed it without asking (approval_grants.id), if one did. */
    grantId: text('grant_id'),
  },
  (t) => [
    index('approval_requests_status_requested_idx').on(t.status, t.requestedAt),
    index('approval_requests_status_expires_idx').on(t.status, t.expiresAt),
    index('approval_requests_execution_idx').on(t.executionStatus, t.status),
    index('approval_requests_instance_idx').on(t.instanceId, t.status),
    index('approval_requests_requested_at_idx').on(t.requestedAt),
  ],
);

export const approvalDecisions = sqliteTable(
  'approval_decisions',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    requestId: text('request_id')
      .notNull()
      .references(() => approvalRequests.id, { onDelete: 'cascade' }),
    approverId: text('approver_id').notNull(),
    verdict: text('verdict', { enum: ['approve', 'reject'] }).notNull(),
    reason: text('reason').notNull(),
    decidedAt: integer('decided_at').notNull(),
    /** The standing approval this approver asked for with their approval (JSON GrantTerms), if any. */
    grant: text('grant'),
  },
  (t) => [uniqueIndex('approval_decisions_request_approver_idx').on(t.requestId, t.approverId)],
);

/**
 * Standing approvals: an approved request's call allowed again, for the same requester, until
 * `expires_at` and for at most `uses_left` more calls (src/approvals/grants.ts).
 */
export const approvalGrants = sqliteTable(
  'approval_grants',
  {
    id: text('id').primaryKey(),
    /** The request whose approval created it. */
    requestId: text('request_id').notNull(),
    tool: text('tool').notNull(),
    requesterId: text('requester_id').notNull(),
    sensitivity: text('sensitivity', { enum: ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] }).notNull(),
    /** `exact`: the same arguments; `match`: constrained keys, the others equal; `any`: any arguments. */
    scope: text('scope', { enum: ['exact', 'match', 'any'] }).notNull(),
    /** The approved arguments in RFC 8785 canonical form. */
    arguments: text('arguments').notNull(),
    /** JSON: `{key: {kind, value}}` for `match`. */
    matchers: text('matchers').notNull().default('{}'),
    /** JSON array of the approvers whose approvals created it. */
    approvers: text('approvers').notNull(),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    /** Calls it still allows; null: any number until it expires. */
    usesLeft: integer('uses_left'),
    maxUses: integer('max_uses'),
    uses: integer('uses').notNull().default(0),
    revokedAt: integer('revoked_at'),
    revokedBy: text('revoked_by'),
    revokeReason: text('revoke_reason'),
  },
  (t) => [index('approval_grants_lookup_idx').on(t.tool, t.requesterId, t.expiresAt), index('approval_grants_requester_idx').on(t.requesterId)],
);

export const auditEvents = sqliteTable(
  'audit_events',
  {
    /** Assigned at insert, never reused (AUTOINCREMENT: not even after the newest rows are deleted). */
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    at: integer('at').notNull(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    tool: text('tool'),
    requestId: text('request_id'),
    status: text('status'),
    durationMs: integer('duration_ms'),
    details: text('details').notNull().default('{}'),
    /** The HTTP request id (X-Request-Id) that caused the event, when there was one. */
    httpRequestId: text('http_request_id'),
    /** The process that wrote the event; the polling fallback skips its own. */
    instanceId: text('instance_id').notNull(),
    /**
     * The hash chain the event belongs to: every writer (a gateway process, a CLI run) appends to
     * chains of its own, so appends take no lock shared with other writers. Null for the one chain
     * written before per-writer chains, whose position is `seq`.
     */
    chain: text('chain'),
    /** The event's position in its chain, from 1; null with `chain`. */
    chainSeq: integer('chain_seq'),
    /** The hash of the event before it in its chain (64 zeros for a chain's first event). */
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [
    uniqueIndex('audit_events_chain_position_idx').on(t.chain, t.chainSeq),
    index('audit_events_chain_seq_idx').on(t.chain, t.seq),
    index('audit_events_actor_idx').on(t.actor, t.seq),
    index('audit_events_tool_idx').on(t.tool, t.seq),
    index('audit_events_action_idx').on(t.action, t.seq),
    index('audit_events_at_idx').on(t.at),
    index('audit_events_request_idx').on(t.requestId),
  ],
);

/**
 * Signed checkpoints of the audit log's chain heads (src/audit/checkpoints.ts), every
 * AUDIT_CHECKPOINT_EVERY events and at shutdown; each is also appended to a file beside the key.
 */
export const auditCheckpoints = sqliteTable('audit_checkpoints', {
  /** The newest event covered (the largest seq among the heads). */
  seq: integer('seq').primaryKey(),
  /** SHA-256 of `heads`; for a checkpoint from before per-writer chains, the hash of event `seq`. */
  hash: text('hash').notNull(),
  /** Every chain's head when it was signed, JSON `[{chain, chainSeq, seq, hash}]`; null before per-writer chains. */
  heads: text('heads'),
  at: integer('at').notNull(),
  instanceId: text('instance_id').notNull(),
  /** The first 16 hex digits of the SHA-256 of the Ed25519 public key. */
  keyId: text('key_id').notNull(),
  /** Ed25519 signature, base64. */
  signature: text('signature').notNull(),
});

/** One row per gateway process; a stale heartbeat means the process is gone. */
export const instances = sqliteTable('instances', {
  id: text('id').primaryKey(),
  hostname: text('hostname').notNull(),
  pid: integer('pid').notNull(),
  startedAt: integer('started_at').notNull(),
  heartbeatAt: integer('heartbeat_at').notNull(),
  stoppedAt: integer('stopped_at'),
});

/**
 * Tool calls counted per caller and minute across every instance (the cluster-wide rate limit on
 * PostgreSQL, src/limits/); windows older than the previous minute are deleted as new ones start.
 */
export const rateWindows = sqliteTable(
  'rate_windows',
  {
    key: text('key').notNull(),
    windowStart: integer('window_start').notNull(),
    count: integer('count').notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.windowStart] })],
);

/** Small key/value facts: the audit chain's anchor after pruning, the seed marker. */
export const meta = sqliteTable('meta', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
  updatedAt: integer('updated_at').notNull().default(sql`0`),
});

/**
 * The notification outbox (src/notify/): one row per event and receiver, written in the same
 * transaction as the change it announces, sent by the delivery worker, retried with backoff until
 * delivered or dead. `seq` orders a request's deliveries to one receiver.
 */
export const notifyDeliveries = sqliteTable(
  'notify_deliveries',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    /** The delivery's id (UUID), sent as X-Toolgate-Delivery. */
    id: text('id').notNull(),
    /** The event's id (UUID), the same for every receiver: the idempotency key. */
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    /** The receiver's name in toolgate.json `notify`. */
    receiver: text('receiver').notNull(),
    requestId: text('request_id').notNull(),
    /** The event as JSON, frozen when it happened. */
    payload: text('payload').notNull(),
    status: text('status', { enum: ['pending', 'delivered', 'dead'] }).notNull(),
    /** Attempts started; the next attempt is number attempts + 1. */
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at').notNull(),
    createdAt: integer('created_at').notNull(),
    lastAttemptAt: integer('last_attempt_at'),
    /** The receiver's HTTP status on the last attempt (null: no answer). */
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    deliveredAt: integer('delivered_at'),
    /** What a receiver answered that a later delivery needs (Slack: the message's channel and ts, JSON). */
    response: text('response'),
    /** The instance that made the last attempt. */
    claimedBy: text('claimed_by'),
  },
  (t) => [
    uniqueIndex('notify_deliveries_id_idx').on(t.id),
    index('notify_deliveries_due_idx').on(t.receiver, t.status, t.nextAttemptAt),
    index('notify_deliveries_request_idx').on(t.requestId, t.receiver),
    index('notify_deliveries_created_idx').on(t.createdAt),
  ],
);

/** Requests that were escalated (toolgate.json `escalation`): at most once each. */
export const notifyEscalations = sqliteTable('notify_escalations', {
  requestId: text('request_id')
    .primaryKey()
    .references(() => approvalRequests.id, { onDelete: 'cascade' }),
  escalatedAt: integer('escalated_at').notNull(),
});

/** A Slack user linked to a toolgate user: a button pressed in Slack decides as that user. */
export const slackLinks = sqliteTable(
  'slack_links',
  {
    slackUserId: text('slack_user_id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [uniqueIndex('slack_links_user_idx').on(t.userId)],
);
