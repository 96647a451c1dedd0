import { createHash } from 'node:crypto';
import type { AuditEntry, AuditLog } from '../audit/audit.service.js';
import type { Persistence, Transaction } from '../core/persistence.js';
import type { ApprovalBus, ApprovalEventType } from '../events/bus.js';
import { AppError } from '../core/errors.js';
import type { Logger } from '../logger.js';
import { APPROVAL_MANAGE, APPROVAL_VIEW, type PolicyService, type Principal, type ResolvedPolicy } from '../policy/policy.service.js';
import type { CallToolResult, ToolExecutor } from '../tools/upstreams.js';
import {
  executionSettled,
  MIN_ID_PREFIX,
  needsApproval,
  summarizeArguments,
  summarizeView,
  SUMMARY_ARGUMENTS_BYTES,
  TOOL_NAME,
  toApprovalView,
  type ApprovalSummary,
  type ArgumentsSummary,
  type ApprovalMode,
  type ApprovalRecord,
  type DecisionRecord,
  type ApprovalView,
  type Sensitivity,
  type Verdict,
} from './approval.js';
import { cancelInTransaction, isRefusal, REFUSED_PREFIX, withdrawnPower } from './revocation.js';

/** What an auto-approved decision-only request keeps of its arguments: their SHA-256 and size. */
export function argumentsDigest(argumentsJson: string): { sha256: string; bytes: number } {
  return { sha256: createHash('sha256').update(argumentsJson).digest('hex'), bytes: Buffer.byteLength(argumentsJson) };
}

export interface Clock {
  now(): number;
}

export interface IdSource {
  uuid(): string;
}

export interface ApprovalSettings {
  rbacEnabled: boolean;
  approvalWorkflowEnabled: boolean;
  approvalTimeoutMs: number;
  maxPending: number;
  /** Pending requests one requester may hold; checked with the global cap, in the same transaction. */
  maxPendingPerUser?: number;
  quorum: { HIGH: number; CRITICAL: number };
  allowSelfApproval: boolean;
  /** False for processes with no upstreams (the CLI): they decide but never claim executions. */
  runsTools?: boolean;
}

export interface ApprovalsDeps {
  store: Persistence;
  audit: AuditLog;
  bus: ApprovalBus;
  policy: PolicyService;
  tools: ToolExecutor;
  clock: Clock;
  ids: IdSource;
  logger: Logger;
  instanceId: string;
  settings: ApprovalSettings;
  metrics?: ApprovalMetrics;
}

/** Hooks for counters; all optional so tests and the CLI need none. */
export interface ApprovalMetrics {
  decided?(verdict: Verdict | 'expired' | 'cancelled', sensitivity: Sensitivity, waitedMs: number): void;
  upstreamCall?(tool: string, outcome: 'ok' | 'tool_error' | 'error', ms: number): void;
}

export interface CallContext {
  signal?: AbortSignal | undefined;
  httpRequestId?: string | undefined;
  /** Called once the request is pending (before the wait), e.g. to send MCP progress notifications. */
  onPending?: ((approval: ApprovalView) => void) | undefined;
}

export type GateOutcome =
  | { kind: 'ran'; result: CallToolResult; sensitivity: Sensitivity }
  | { kind: 'accepted'; approval: ApprovalView }
  | { kind: 'approved'; result: CallToolResult; approval: ApprovalView };

const ID_CHARS = /^[0-9a-f-]{1,36}$/;
/** Summaries of shortened arguments kept (arguments never change, so they never go stale). */
const SUMMARY_CACHE_SIZE = 1000;

/** An undashed prefix longer than 8 characters, dashed as in the UUID (`abcdef0112` → `abcdef01-12`). */
function dashed(prefix: string): string {
  if (prefix.includes('-') || prefix.length <= 8) return prefix;
  return [prefix.slice(0, 8), prefix.slice(8, 12), prefix.slice(12, 16), prefix.slice(16, 20), prefix.slice(20)].filter(Boolean).join('-');
}

/**
 * The request state machine and the gate in front of the tools. Every transition is a
 * conditional UPDATE inside an IMMEDIATE transaction together with its audit event, so two
 * deciders (in this process or another) can never both win, and nothing is half-written.
 */
export class ApprovalService {
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  /** Requests whose `wait` caller this process holds: cancelled with 503 on shutdown. */
  private readonly localWaiters = new Map<string, { fail: (err: AppError) => void; httpRequestId: string | undefined }>();
  /** Long-polls (GET ?wait) in progress: answered 503 on shutdown. */
  private readonly longPolls = new Set<() => void>();
  private shuttingDown = false;
  private readonly argumentSummaries = new Map<string, ArgumentsSummary>();

  constructor(private readonly deps: ApprovalsDeps) {}

  // ---- reading ----------------------------------------------------------------------------

  async view(row: ApprovalRecord): Promise<ApprovalView> {
    return toApprovalView(row, await this.deps.store.approvals.decisions(row.id));
  }

  private async viewOf(id: string): Promise<ApprovalView> {
    const row = await this.deps.store.approvals.request(id);
    if (!row) throw new AppError('not_found', `approval request ${id} not found`);
    return this.view(row);
  }

  /** Full id or a unique prefix of at least MIN_ID_PREFIX characters (dashes optional): the one rule for every client. */
  async resolveId(ref: string): Promise<string> {
    const normalized = dashed(ref.trim().toLowerCase());
    if (!ID_CHARS.test(normalized)) throw new AppError('not_found', `no approval request matches "${ref.slice(0, 64)}"`);
    if (normalized.replace(/-/g, '').length < MIN_ID_PREFIX) {
      throw new AppError('not_found', `"${normalized}" is too short to find a request: give at least ${MIN_ID_PREFIX} characters of its id (its short id)`);
    }
    const ids = await this.deps.store.approvals.idsWithPrefix(normalized);
    if (ids.length === 0) throw new AppError('not_found', `no approval request matches "${normalized}"`);
    if (ids.length > 1) throw new AppError('ambiguous_id', `"${normalized}" matches more than one request; give more characters`);
    return ids[0]!;
  }

  canView(principal: Principal): boolean {
    return !principal.anonymous && this.deps.policy.hasPermission(principal.role, APPROVAL_VIEW);
  }

  requireApprover(principal: Principal | undefined, permission: typeof APPROVAL_VIEW | typeof APPROVAL_MANAGE): Principal {
    if (!principal || principal.anonymous) throw new AppError('unauthorized', 'an approver token is required');
    if (!this.deps.policy.hasPermission(principal.role, permission)) {
      throw new AppError('permission_denied', `role "${principal.role}" lacks ${permission}`);
    }
    return principal;
  }

  /** A request as its requester or an approver may see it; others are told it does not exist. */
  async get(principal: Principal, ref: string): Promise<ApprovalView> {
    const id = await this.resolveId(ref);
    const approval = await this.viewOf(id);
    if (approval.requester.id !== principal.id && !this.canView(principal)) {
      throw new AppError('not_found', `no approval request matches "${ref.slice(0, 64)}"`);
    }
    return approval;
  }

  /** Pending requests as summaries: arguments bounded (SUMMARY_ARGUMENTS_BYTES), so lists stay small. */
  async listPending(limit: number): Promise<ApprovalSummary[]> {
    const { approvals } = this.deps.store;
    const rows = await approvals.listPendingBounded(limit, SUMMARY_ARGUMENTS_BYTES);
    const byRequest = new Map<string, DecisionRecord[]>();
    for (const d of await approvals.decisionsFor(rows.map((r) => r.id))) {
      const list = byRequest.get(d.requestId);
      if (list) list.push(d);
      else byRequest.set(d.requestId, [d]);
    }
    const summaries: ApprovalSummary[] = [];
    for (const { argumentsBytes: _bytes, ...r } of rows) {
      // Large arguments were left in the database: summarized once from the full row, then cached.
      const args =
        this.argumentSummaries.get(r.id) ??
        this.argumentsSummary(r.id, summarizeArguments(r.arguments ?? (await approvals.request(r.id))?.arguments ?? 'null'));
      summaries.push({ ...toApprovalView({ ...r, arguments: '' }, byRequest.get(r.id) ?? [], args.arguments), ...args });
    }
    return summaries;
  }

  /** A full view made into a summary, for push frames. */
  summarize(view: ApprovalView): ApprovalSummary {
    return summarizeView(view, this.argumentSummaries.get(view.id) ?? this.argumentsSummary(view.id, summarizeArguments(JSON.stringify(view.arguments), view.arguments)));
  }

  /** Keeps a summary made of a request's arguments and returns it. */
  private argumentsSummary(id: string, made: ArgumentsSummary): ArgumentsSummary {
    // Only shortened ones are worth keeping: they save parsing a large JSON on every list.
    if (made.argumentsTruncated) {
      this.argumentSummaries.set(id, made);
      if (this.argumentSummaries.size > SUMMARY_CACHE_SIZE) this.argumentSummaries.delete(this.argumentSummaries.keys().next().value!);
    }
    return made;
  }

  countPending(): Promise<number> {
    return this.deps.store.approvals.countPending();
  }

  /**
   * Long-poll: resolves when the request is decided and, if this gateway runs it, its
   * execution has finished; or when `timeoutMs` passes. Always returns the current state.
   */
  async waitUntilSettled(id: string, timeoutMs: number, signal?: AbortSignal): Promise<ApprovalView> {
    const settled = (a: ApprovalView) => a.status !== 'pending' && executionSettled(a.execution.status);
    const current = await this.viewOf(id);
    if (settled(current) || timeoutMs <= 0) return current;
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        unwatch();
        this.longPolls.delete(onShutdown);
        signal?.removeEventListener('abort', finish);
        resolve(this.viewOf(id));
      };
      // Shutdown answers a long-poll at once (503) instead of holding the stop until the connection is cut.
      const onShutdown = () => {
        clearTimeout(timer);
        unwatch();
        signal?.removeEventListener('abort', finish);
        this.viewOf(id).then((approval) => reject(new AppError('shutting_down', 'the gateway is shutting down; ask another instance or retry', { approval })), reject);
      };
      const timer = setTimeout(finish, timeoutMs);
      const unwatch = this.deps.bus.watch(id, (event) => {
        if (settled(event.approval)) finish();
      });
      this.longPolls.add(onShutdown);
      signal?.addEventListener('abort', finish, { once: true });
    });
  }

  // ---- the gate ---------------------------------------------------------------------------

  /** Resolves the tool's policy and checks the caller may call it. */
  async authorizeTool(principal: Principal, toolName: string, options: { requireUpstream: boolean }): Promise<ResolvedPolicy> {
    if (!TOOL_NAME.test(toolName)) throw new AppError('unknown_tool', 'unknown tool: a tool name is 1-128 letters, digits, "_", "-", "." or "/"');
    const entry = this.deps.tools.get(toolName);
    // Without an upstream, only a name the policy or catalog spells out exactly: a glob names no tool.
    if (!entry && (options.requireUpstream || !this.deps.policy.namesExactly(toolName))) {
      throw new AppError('unknown_tool', `unknown tool "${toolName.slice(0, 200)}"`);
    }
    const policy = this.deps.policy.resolve(toolName, entry);
    if (this.deps.settings.rbacEnabled && !policy.roles.has(principal.role)) {
      await this.audit({ actor: principal.id, action: 'tool.denied', tool: toolName, status: 'denied', details: { role: principal.role } });
      throw new AppError('permission_denied', `role "${principal.role}" may not call "${toolName}"`);
    }
    return policy;
  }

  private async audit(entry: AuditEntry): Promise<void> {
    await this.deps.store.withTransaction((tx) => this.deps.audit.append(tx, entry));
  }

  /** Calls a tool through the gate: at once when it needs no approval, else after the decision. */
  async callTool(principal: Principal, toolName: string, args: Record<string, unknown>, mode: 'wait' | 'async', ctx: CallContext = {}): Promise<GateOutcome> {
    this.assertOpen();
    const policy = await this.authorizeTool(principal, toolName, { requireUpstream: true });
    if (!this.deps.settings.approvalWorkflowEnabled || !needsApproval(policy.sensitivity)) {
      const result = await this.runDirect(principal, toolName, args, policy.sensitivity, ctx);
      return { kind: 'ran', result, sensitivity: policy.sensitivity };
    }
    const created = await this.createRequest(principal, toolName, args, policy.sensitivity, mode, ctx);
    if (mode === 'async') return { kind: 'accepted', approval: created };
    ctx.onPending?.(created);
    const decided = await this.untilDecided(created.id, principal, ctx);
    return this.finishWaiting(decided, ctx);
  }

  /** Decision-only: the caller runs the tool itself once approved. */
  async requestDecision(principal: Principal, toolName: string, args: Record<string, unknown>, ctx: CallContext = {}): Promise<ApprovalView> {
    this.assertOpen();
    const policy = await this.authorizeTool(principal, toolName, { requireUpstream: false });
    if (!this.deps.settings.approvalWorkflowEnabled || !needsApproval(policy.sensitivity)) {
      return this.createRequest(principal, toolName, args, policy.sensitivity, 'decision', ctx, { autoApprove: true });
    }
    return this.createRequest(principal, toolName, args, policy.sensitivity, 'decision', ctx);
  }

  private async runDirect(principal: Principal, toolName: string, args: Record<string, unknown>, sensitivity: Sensitivity, ctx: CallContext) {
    const started = this.deps.clock.now();
    const unapproved = needsApproval(sensitivity);
    try {
      // No abort signal: a direct call is short, and it is audited whether or not the caller stays.
      const result = await this.invoke(toolName, args);
      await this.audit({
        actor: principal.id,
        action: 'tool.executed',
        tool: toolName,
        status: result.isError ? 'tool_error' : 'succeeded',
        durationMs: this.deps.clock.now() - started,
        details: unapproved ? { arguments: args, sensitivity, unapproved: true, reason: 'approval workflow disabled' } : { arguments: args, sensitivity },
        httpRequestId: ctx.httpRequestId,
      });
      return result;
    } catch (err) {
      await this.audit({
        actor: principal.id,
        action: 'tool.executed',
        tool: toolName,
        status: 'failed',
        durationMs: this.deps.clock.now() - started,
        details: { arguments: args, sensitivity, error: (err as Error).message },
        httpRequestId: ctx.httpRequestId,
      });
      throw err;
    }
  }

  private async invoke(toolName: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    const started = performance.now();
    try {
      const result = await this.deps.tools.call(toolName, args, signal ? { signal } : {});
      this.deps.metrics?.upstreamCall?.(toolName, result.isError ? 'tool_error' : 'ok', performance.now() - started);
      return result;
    } catch (err) {
      this.deps.metrics?.upstreamCall?.(toolName, 'error', performance.now() - started);
      throw err;
    }
  }

  private async createRequest(
    principal: Principal,
    toolName: string,
    args: Record<string, unknown>,
    sensitivity: Sensitivity,
    mode: ApprovalMode,
    ctx: CallContext,
    options: { autoApprove?: boolean } = {},
  ): Promise<ApprovalView> {
    const { store, settings, clock } = this.deps;
    const id = this.deps.ids.uuid();
    const now = clock.now();
    // An auto-approved decision is never shown to an approver and never run here: it keeps a
    // fixed-size digest of its arguments, so a caller cannot grow the database with them.
    const argumentsJson = JSON.stringify(args);
    const digest = options.autoApprove && mode === 'decision' ? argumentsDigest(argumentsJson) : undefined;
    const storedArguments = digest ? JSON.stringify(digest) : argumentsJson;
    const row: ApprovalRecord = {
      id,
      shortId: id.replace(/-/g, '').slice(0, 8),
      tool: toolName,
      arguments: storedArguments,
      requesterId: principal.id,
      requesterRole: principal.role,
      tokenId: principal.tokenId ?? null,
      sensitivity,
      mode,
      status: options.autoApprove ? 'approved' : 'pending',
      statusReason: options.autoApprove ? (settings.approvalWorkflowEnabled ? `${sensitivity} needs no approval` : 'approval workflow disabled') : null,
      requiredApprovals: needsApproval(sensitivity) ? settings.quorum[sensitivity as 'HIGH' | 'CRITICAL'] : 0,
      instanceId: mode === 'wait' ? this.deps.instanceId : null,
      requestedAt: now,
      expiresAt: now + settings.approvalTimeoutMs,
      decidedAt: options.autoApprove ? now : null,
      executionStatus: 'none',
      executionInstanceId: null,
      executionStartedAt: null,
      executionFinishedAt: null,
      executionError: null,
      result: null,
    };
    await store.withTransaction(async (tx) => {
      if (!options.autoApprove) await this.reservePendingSlot(tx, principal);
      await tx.approvals.insertRequest(row);
      await this.deps.audit.append(tx, {
        actor: principal.id,
        action: options.autoApprove ? 'approval.auto_approved' : 'approval.requested',
        tool: toolName,
        requestId: id,
        status: row.status,
        details: { arguments: digest ?? args, sensitivity, mode, requiredApprovals: row.requiredApprovals },
        httpRequestId: ctx.httpRequestId,
      });
    });
    const approval = toApprovalView(row, [], digest ?? args);
    if (!options.autoApprove) {
      // Summarized now, while the arguments are at hand: lists and pushes then never re-read them.
      this.argumentsSummary(id, summarizeArguments(row.arguments, args));
      this.armExpiry(id, row.expiresAt - now);
      this.publish('approval.requested', approval);
    }
    return approval;
  }

  /** The caps, read inside the insert's transaction: the global one, then the requester's own. */
  private async reservePendingSlot(tx: Transaction, principal: Principal) {
    const { settings } = this.deps;
    const perUser = settings.maxPendingPerUser;
    const slot = await tx.approvals.reservePendingSlot({ max: settings.maxPending, requesterId: principal.id, maxPerRequester: perUser });
    if (slot === 'global_cap') {
      throw new AppError('too_many_pending', `${settings.maxPending} requests are already pending; try again later`, {
        limit: 'global',
        max_pending: settings.maxPending,
      });
    }
    if (slot === 'requester_cap') {
      throw new AppError('too_many_pending', `${principal.id} already has ${perUser} pending requests; wait for a decision or cancel one`, {
        limit: 'per_user',
        max_pending_per_user: perUser!,
      });
    }
  }

  private armExpiry(id: string, delayMs: number) {
    const timer = setTimeout(() => {
      this.expire(id).catch((err: unknown) => this.deps.logger.error({ err, requestId: id }, 'could not expire a request'));
    }, Math.max(0, delayMs));
    timer.unref();
    this.expiryTimers.set(id, timer);
  }

  private disarmExpiry(id: string) {
    const timer = this.expiryTimers.get(id);
    if (timer) clearTimeout(timer);
    this.expiryTimers.delete(id);
  }

  /** Waits until the request leaves `pending`; a caller that goes away cancels it. */
  private untilDecided(id: string, principal: Principal, ctx: CallContext): Promise<ApprovalView> {
    const signal = ctx.signal;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        unwatch();
        signal?.removeEventListener('abort', onAbort);
        this.localWaiters.delete(id);
        fn();
      };
      const check = (approval: ApprovalView) => {
        if (approval.status !== 'pending') finish(() => resolve(approval));
      };
      const onAbort = () =>
        finish(() => {
          this.cancel(id, principal.id, 'caller disconnected')
            .catch((err: unknown) => this.deps.logger.error({ err, requestId: id }, 'could not cancel the request of a caller that went away'))
            .finally(() => reject(new AppError('approval_cancelled', 'the caller went away; the request was cancelled')));
        });
      const unwatch = this.deps.bus.watch(id, (event) => check(event.approval));
      this.localWaiters.set(id, { fail: (err) => finish(() => reject(err)), httpRequestId: ctx.httpRequestId });
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.viewOf(id).then(check, (err: unknown) => finish(() => reject(err)));
    });
  }

  private async finishWaiting(decided: ApprovalView, ctx: CallContext): Promise<GateOutcome> {
    switch (decided.status) {
      case 'approved': {
        // Running already means decide() claimed it for this waiter (see there).
        const preclaimed = decided.execution.status === 'running';
        if (ctx.signal?.aborted) {
          await this.abandon(decided.id, 'the caller went away before the tool ran', preclaimed);
          throw new AppError('approval_cancelled', 'the caller went away before the tool ran');
        }
        const { result, approval } = await this.execute(decided.id, ctx, { preclaimed });
        return { kind: 'approved', result, approval };
      }
      case 'rejected':
        throw new AppError('approval_rejected', `request ${decided.shortId} was rejected: ${lastReason(decided)}`, { approval: decided });
      case 'expired':
        throw new AppError('approval_expired', `request ${decided.shortId} expired without a decision`, { approval: decided });
      default:
        throw new AppError(this.shuttingDown ? 'shutting_down' : 'approval_cancelled', `request ${decided.shortId} was cancelled: ${decided.statusReason ?? ''}`.trim(), {
          approval: decided,
        });
    }
  }

  /**
   * Runs an approved request once: the conditional claim makes a second runner impossible.
   * `preclaimed`: the deciding transaction already claimed it for this process's waiter.
   */
  async execute(id: string, ctx: CallContext = {}, options: { preclaimed?: boolean } = {}): Promise<{ result: CallToolResult; approval: ApprovalView }> {
    const { store, clock } = this.deps;
    const row = await store.approvals.request(id);
    if (!row) throw new AppError('not_found', `approval request ${id} not found`);
    const claim = options.preclaimed
      ? row.executionStatus === 'running' && row.executionInstanceId === this.deps.instanceId
        ? 'claimed'
        : 'taken'
      : await store.withTransaction((tx) => this.claimInTransaction(tx, row, ctx.httpRequestId));
    if (claim !== 'claimed') {
      const now = await this.viewOf(id);
      if (claim === 'refused') this.publish('approval.executed', now);
      if (isRefusal(now.execution.error)) {
        throw new AppError('access_revoked', `request ${row.shortId} was approved but not run: ${now.execution.error!.slice(REFUSED_PREFIX.length)}`, { approval: now });
      }
      throw new AppError('not_pending', `request ${row.shortId} is already running or has run`);
    }
    const args = JSON.parse(row.arguments) as Record<string, unknown>;
    const started = clock.now();
    let result: CallToolResult;
    try {
      result = await this.invoke(row.tool, args, ctx.signal);
    } catch (err) {
      const message = (err as Error).message;
      await this.recordExecution(row, { status: 'failed', error: message, started, ctx });
      throw err instanceof AppError ? new AppError(err.code, err.message, { ...err.extra, approval: await this.viewOf(id) }) : err;
    }
    const approval = await this.recordExecution(row, {
      status: result.isError ? 'failed' : 'succeeded',
      result: JSON.stringify(result),
      error: result.isError ? 'the tool reported an error' : null,
      started,
      ctx,
    });
    return { result, approval };
  }

  private async recordExecution(
    row: ApprovalRecord,
    outcome: { status: 'succeeded' | 'failed'; result?: string; error?: string | null; started: number; ctx: CallContext },
  ): Promise<ApprovalView> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const finished = await store.withTransaction(async (tx) => {
      const done = await tx.approvals.finishExecution(row.id, { status: outcome.status, result: outcome.result ?? null, error: outcome.error ?? null, now });
      if (!done) return undefined;
      await this.deps.audit.append(tx, {
        actor: 'system',
        action: `execution.${outcome.status}`,
        tool: row.tool,
        requestId: row.id,
        status: outcome.status,
        durationMs: now - outcome.started,
        details: outcome.error ? { error: outcome.error } : {},
        httpRequestId: outcome.ctx.httpRequestId,
      });
      return done;
    });
    const approval = finished ? await this.view(finished) : await this.viewOf(row.id);
    this.publish('approval.executed', approval);
    return approval;
  }

  /**
   * The point of no return. A request whose requester was disabled, or whose token was revoked,
   * since it was made is refused here, in the claim's transaction: it never runs.
   */
  private async claimInTransaction(tx: Transaction, row: ApprovalRecord, httpRequestId: string | undefined): Promise<'claimed' | 'refused' | 'taken'> {
    const { clock, audit } = this.deps;
    const withdrawn = await withdrawnPower(tx.identity, row);
    if (withdrawn) {
      const error = `${REFUSED_PREFIX}${withdrawn}`;
      if (!(await tx.approvals.endExecution(row.id, { from: 'pending', to: 'failed', error, now: clock.now() }))) return 'taken';
      await audit.append(tx, { actor: 'system', action: 'execution.refused', tool: row.tool, requestId: row.id, status: 'failed', details: { error }, httpRequestId });
      return 'refused';
    }
    if (!(await tx.approvals.claimExecution(row.id, this.deps.instanceId, clock.now()))) return 'taken';
    await audit.append(tx, { actor: 'system', action: 'execution.started', tool: row.tool, requestId: row.id, status: 'running', httpRequestId });
    return 'claimed';
  }

  /** Marks an approved request that will never run here as failed: its caller is gone. */
  private async abandon(id: string, reason: string, preclaimed = false) {
    const { store, clock } = this.deps;
    const changed = await store.withTransaction(async (tx) => {
      const done = await tx.approvals.endExecution(id, { from: preclaimed ? 'running' : 'pending', to: 'failed', error: reason, now: clock.now() });
      if (!done) return undefined;
      await this.deps.audit.append(tx, { actor: 'system', action: 'execution.failed', requestId: id, status: 'failed', details: { error: reason } });
      return done;
    });
    if (changed) this.publish('approval.executed', await this.view(changed));
  }

  // ---- decisions and other transitions ------------------------------------------------------

  /** One approver's verdict. Four-eyes, quorum and "a second decision never wins" live here only. */
  async decide(approver: Principal, ref: string, verdict: Verdict, reason: string, ctx: CallContext = {}): Promise<ApprovalView> {
    this.requireApprover(approver, APPROVAL_MANAGE);
    const { store, clock, settings } = this.deps;
    const id = await this.resolveId(ref);
    let resolvedTo: 'approved' | 'rejected' | 'expired' | null = null;
    await store.withTransaction(async (tx) => {
      // Locked: a second approver of this request waits here, so quorum counts never interleave.
      const row = await tx.approvals.lockForDecision(id);
      if (!row) throw new AppError('not_found', `approval request ${ref} not found`);
      if (row.requesterId === approver.id && !settings.allowSelfApproval) {
        throw new AppError('self_approval', 'you may not decide your own request');
      }
      if (row.status !== 'pending') throw new AppError('not_pending', `request ${row.shortId} is already ${row.status}`, { status: row.status });
      const now = clock.now();
      if (row.expiresAt <= now) {
        await this.expireInTransaction(tx, row, now);
        resolvedTo = 'expired';
        return;
      }
      if (!(await tx.approvals.insertDecision({ requestId: id, approverId: approver.id, verdict, reason, now }))) {
        throw new AppError('already_decided', `you have already decided request ${row.shortId}`);
      }
      let approvals: number | undefined;
      if (verdict === 'reject') {
        await tx.approvals.transition(id, 'pending', 'rejected', { decidedAt: now, statusReason: reason });
        resolvedTo = 'rejected';
      } else if ((approvals = await tx.approvals.countApprovals(id)) >= row.requiredApprovals) {
        await tx.approvals.transition(id, 'pending', 'approved', {
          decidedAt: now,
          statusReason: reason,
          executionStatus: row.mode === 'decision' ? 'none' : 'pending',
        });
        resolvedTo = 'approved';
      }
      await this.deps.audit.append(tx, {
        actor: approver.id,
        action: resolvedTo ? `approval.${resolvedTo}` : 'approval.decision',
        tool: row.tool,
        requestId: id,
        status: resolvedTo ?? 'pending',
        durationMs: now - row.requestedAt,
        details: { verdict, reason, approvals, required: row.requiredApprovals },
        httpRequestId: ctx.httpRequestId,
      });
      // The caller waits in this process: claim the run in this same transaction, one commit
      // fewer per approval. The waiter sees `running` and executes without claiming again.
      const waiter = this.localWaiters.get(id);
      if (resolvedTo === 'approved' && row.mode === 'wait' && row.instanceId === this.deps.instanceId && waiter) {
        await this.claimInTransaction(tx, row, waiter.httpRequestId);
      }
    });
    const approval = await this.viewOf(id);
    if (resolvedTo === 'expired') {
      this.afterResolved(approval);
      throw new AppError('not_pending', `request ${approval.shortId} has expired`, { status: 'expired' });
    }
    if (resolvedTo) this.afterResolved(approval);
    else this.publish('approval.updated', approval);
    return approval;
  }

  /** The requester withdraws a pending request. */
  async cancelByRequester(principal: Principal, ref: string, ctx: CallContext = {}): Promise<ApprovalView> {
    const id = await this.resolveId(ref);
    const row = await this.deps.store.approvals.request(id);
    if (!row) throw new AppError('not_found', `approval request ${ref} not found`);
    if (row.requesterId !== principal.id) {
      if (this.canView(principal)) throw new AppError('permission_denied', 'only the requester may cancel a request');
      throw new AppError('not_found', `no approval request matches "${ref.slice(0, 64)}"`);
    }
    if (!(await this.cancel(id, principal.id, 'cancelled by the requester', ctx))) {
      throw new AppError('not_pending', `request ${row.shortId} is already ${(await this.deps.store.approvals.request(id))?.status}`);
    }
    return this.viewOf(id);
  }

  /** pending → cancelled; false when it was no longer pending. */
  async cancel(id: string, actor: string, reason: string, ctx: CallContext = {}): Promise<boolean> {
    const { store, clock } = this.deps;
    const changed = await store.withTransaction(async (tx) => {
      const row = await tx.approvals.request(id);
      return row && cancelInTransaction(tx, { audit: this.deps.audit, clock }, row, actor, reason, ctx.httpRequestId);
    });
    if (changed) this.afterResolved(await this.view(changed));
    return changed !== undefined;
  }

  /** Requests that another service of this process resolved (user management cancels a disabled requester's): wake and tell. */
  async resolvedHere(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      const row = await this.deps.store.approvals.request(id);
      if (row) this.afterResolved(await this.view(row));
    }
  }

  /** pending → expired if its time has come; safe to call from any timer or sweep. */
  async expire(id: string): Promise<boolean> {
    const { store, clock } = this.deps;
    this.expiryTimers.delete(id);
    const changed = await store.withTransaction(async (tx) => {
      const row = await tx.approvals.request(id);
      if (!row || row.status !== 'pending' || row.expiresAt > clock.now()) return undefined;
      return this.expireInTransaction(tx, row, clock.now());
    });
    if (changed) this.afterResolved(await this.view(changed));
    return changed !== undefined;
  }

  private async expireInTransaction(tx: Transaction, row: ApprovalRecord, now: number, reason = 'no decision before the timeout'): Promise<ApprovalRecord | undefined> {
    const expired = await tx.approvals.transition(row.id, 'pending', 'expired', { decidedAt: now, statusReason: reason });
    if (!expired) return undefined;
    await this.deps.audit.append(tx, { actor: 'system', action: 'approval.expired', tool: row.tool, requestId: row.id, status: 'expired', durationMs: now - row.requestedAt, details: { reason } });
    return expired;
  }

  private afterResolved(approval: ApprovalView) {
    this.disarmExpiry(approval.id);
    const verdict = approval.status === 'approved' ? 'approve' : approval.status === 'rejected' ? 'reject' : approval.status;
    if (verdict !== 'pending') {
      this.deps.metrics?.decided?.(verdict, approval.sensitivity, Date.parse(approval.decidedAt ?? approval.requestedAt) - Date.parse(approval.requestedAt));
    }
    this.publish('approval.resolved', approval);
    if (approval.status === 'approved' && approval.mode === 'async' && this.deps.settings.runsTools !== false) this.runAsync(approval.id);
  }

  /** Runs an approved async request here, if no other instance has claimed it. */
  runAsync(id: string) {
    this.execute(id).catch((err: AppError) => {
      if (err.code === 'access_revoked') this.deps.logger.info({ requestId: id, err: err.message }, 'async execution refused');
      else if (err.code !== 'not_pending') this.deps.logger.warn({ requestId: id, err: err.message }, 'async execution failed');
    });
  }

  publish(type: ApprovalEventType, approval: ApprovalView, remote = false) {
    // Resolved by another process: this process's expiry timer for it would only linger until it fires.
    if (remote && type === 'approval.resolved') this.disarmExpiry(approval.id);
    this.deps.bus.publish({ type, approval, remote });
  }

  // ---- sweeps, recovery, shutdown -----------------------------------------------------------

  /** Expires every overdue pending request (the per-request timers' safety net). */
  async expireDue(): Promise<number> {
    let n = 0;
    for (const row of await this.deps.store.approvals.pendingDueBy(this.deps.clock.now())) if (await this.expire(row.id)) n++;
    return n;
  }

  /** Expires every pending request now, whatever its deadline (the rollback path: nobody will decide them). */
  async expireAllPending(reason: string): Promise<number> {
    const { store, clock } = this.deps;
    let n = 0;
    for (let rows = await store.approvals.pendingDueBy(Number.MAX_SAFE_INTEGER); rows.length > 0; rows = await store.approvals.pendingDueBy(Number.MAX_SAFE_INTEGER)) {
      for (const row of rows) {
        const expired = await store.withTransaction((tx) => this.expireInTransaction(tx, row, clock.now(), reason));
        if (expired) {
          n++;
          this.afterResolved(await this.view(expired));
        }
      }
    }
    return n;
  }

  /** Claims and runs approved async requests that nobody is running (after a restart, say). */
  async runApprovedAsync(): Promise<number> {
    if (this.deps.settings.runsTools === false) return 0;
    const rows = await this.deps.store.approvals.approvedAsyncAwaitingExecution();
    for (const row of rows) this.runAsync(row.id);
    return rows.length;
  }

  /**
   * Cleans up after a gateway that is gone: its waiting callers can never be answered, so their
   * pending requests are cancelled, and its approved waits that never started are failed; its
   * running executions are marked `interrupted` (they may or may not have run) and never retried.
   */
  async recoverInstance(deadInstanceId: string, reason = 'gateway restarted'): Promise<{ cancelled: number; failed: number; interrupted: number }> {
    const { store, clock } = this.deps;
    const { pendingWaits, unclaimedWaits, running } = await store.approvals.orphansOf(deadInstanceId);
    let cancelled = 0;
    let failed = 0;
    let interrupted = 0;
    for (const row of pendingWaits) if (await this.cancel(row.id, 'system', reason)) cancelled++;
    for (const row of unclaimedWaits) {
      await this.abandon(row.id, `${reason} before the tool ran`);
      failed++;
    }
    for (const row of running) {
      const error = `${reason} while the tool was running; it may or may not have run`;
      const changed = await store.withTransaction(async (tx) => {
        const ended = await tx.approvals.endExecution(row.id, { from: 'running', to: 'interrupted', error, now: clock.now() });
        if (!ended) return undefined;
        await this.deps.audit.append(tx, { actor: 'system', action: 'execution.interrupted', tool: row.tool, requestId: row.id, status: 'interrupted', details: { error } });
        return ended;
      });
      if (changed) {
        interrupted++;
        this.publish('approval.executed', await this.view(changed));
      }
    }
    return { cancelled, failed, interrupted };
  }

  /** Stops taking calls; every caller waiting here gets 503 and its request is cancelled. */
  async shutdown(): Promise<number> {
    this.shuttingDown = true;
    const waiting = [...this.localWaiters.entries()];
    for (const [id, { fail }] of waiting) {
      await this.cancel(id, 'system', 'gateway shutting down');
      fail(new AppError('shutting_down', 'the gateway is shutting down; the request was cancelled'));
    }
    for (const answer of [...this.longPolls]) answer();
    this.longPolls.clear();
    for (const timer of this.expiryTimers.values()) clearTimeout(timer);
    this.expiryTimers.clear();
    return waiting.length;
  }

  get isShuttingDown() {
    return this.shuttingDown;
  }

  private assertOpen() {
    if (this.shuttingDown) throw new AppError('shutting_down', 'the gateway is shutting down');
  }

  counts() {
    return { expiryTimers: this.expiryTimers.size, localWaiters: this.localWaiters.size, longPolls: this.longPolls.size };
  }
}

function lastReason(approval: ApprovalView): string {
  return approval.decisions.at(-1)?.reason ?? approval.statusReason ?? 'no reason given';
}
