import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/audit.service.js';
import { AppError } from '../core/errors.js';
import type { Persistence } from '../core/persistence.js';
import type { ApprovalBus } from '../events/bus.js';
import type { Logger } from '../logger.js';
import type { Principal } from '../policy/policy.service.js';
import { toApprovalView, type ApprovalMode, type ApprovalView, type Sensitivity, type Verdict } from './approval.js';
import type { ApprovalRecord } from './approval-store.js';
import type { Executor } from './executor.js';
import { open, transition, type MachineEvent, type OpenSettings, type Step, type MachineSettings } from './machine.js';
import { castDecisions, commitStep } from './steps.js';
import { callHash } from './binding.js';
import canonicalize from 'canonicalize';
import type { Transaction } from '../core/persistence.js';
import type { GrantPreview, GrantView } from './approval.schemas.js';
import { assertGrantable, combineTerms, describeScope, grantCovers, termsOf, toGrantView, type ApprovalGrant, type GrantCaps, type GrantRequest, type GrantTerms } from './grants.js';
import type { ApprovalViews } from './views.js';

/** What an auto-approved decision-only request keeps of its arguments: their SHA-256 and size. */
export function argumentsDigest(argumentsJson: string): { sha256: string; bytes: number } {
  return { sha256: createHash('sha256').update(argumentsJson).digest('hex'), bytes: Buffer.byteLength(argumentsJson) };
}

/** No standing approvals at all. */
const NO_GRANTS: GrantCaps = { HIGH: null, CRITICAL: null };

export interface RequestSettings extends OpenSettings, MachineSettings {
  approvalWorkflowEnabled: boolean;
  /** The most a standing approval may allow, per sensitivity; absent: none may be made. */
  grantCaps?: GrantCaps | undefined;
  maxPending: number;
  /** Pending requests one requester may hold; checked with the global cap, in the same transaction. */
  maxPendingPerUser?: number | undefined;
}

export interface RequestsDeps {
  store: Persistence;
  audit: AuditLog;
  bus: ApprovalBus;
  views: ApprovalViews;
  executor: Executor;
  clock: { now(): number };
  ids: { uuid(): string };
  logger: Logger;
  instanceId: string;
  settings: RequestSettings;
  /** May a user of this role still approve? (A grant dies with an approver who may not.) */
  canApprove: (role: string) => boolean;
  metrics?: { decided?(verdict: Verdict | 'expired' | 'cancelled', sensitivity: Sensitivity, waitedMs: number): void } | undefined;
}

export interface RequestContext {
  httpRequestId?: string | undefined;
}

/**
 * A request's life until it is decided: made (within the pending caps), decided by approvers,
 * cancelled, expired (a timer per request held here, and a sweep for the rest). Each change is a
 * step of the machine committed with its audit events, then published on the bus.
 */
export class Requests {
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly deps: RequestsDeps) {}

  /** A new request: pending (announced to approvers, with its expiry armed) or, with `autoApproved`, approved at once. */
  async open(
    principal: Principal,
    tool: string,
    args: Record<string, unknown>,
    policy: { sensitivity: Sensitivity; version: string },
    mode: ApprovalMode,
    ctx: RequestContext,
    options: { autoApproved?: string } = {},
  ): Promise<ApprovalView> {
    const { store, settings, clock, views } = this.deps;
    const now = clock.now();
    const auto = options.autoApproved !== undefined;
    // An auto-approved decision is never shown to an approver and never run here: it keeps a
    // fixed-size digest of its arguments, so a caller cannot grow the database with them.
    const argumentsJson = JSON.stringify(args);
    const digest = auto && mode === 'decision' ? argumentsDigest(argumentsJson) : undefined;
    const made = open(
      {
        ...this.newRequest(principal, tool, args, policy, mode, ctx, now),
        argumentsJson: digest ? JSON.stringify(digest) : argumentsJson,
        auditArguments: digest ?? args,
        ...(auto ? { autoApproved: options.autoApproved } : {}),
      },
      settings,
    );
    await store.withTransaction(async (tx) => {
      if (!auto) {
        const slot = await tx.approvals.reservePendingSlot({ max: settings.maxPending, requesterId: principal.id, maxPerRequester: settings.maxPendingPerUser });
        if (slot === 'global_cap') {
          throw new AppError('too_many_pending', `${settings.maxPending} requests are already pending; try again later`, { limit: 'global', max_pending: settings.maxPending });
        }
        if (slot === 'requester_cap') {
          const perUser = settings.maxPendingPerUser!;
          throw new AppError('too_many_pending', `${principal.id} already has ${perUser} pending requests; wait for a decision or cancel one`, {
            limit: 'per_user',
            max_pending_per_user: perUser,
          });
        }
      }
      await tx.approvals.insertRequest(made.record);
      for (const entry of made.audit) await this.deps.audit.append(tx, entry);
    });
    const approval = auto ? await views.present(made.record, [], digest ?? args) : toApprovalView(made.record, [], args);
    if (!auto) {
      views.noteArguments(made.record.id, made.record.arguments, args);
      this.armExpiry(made.record.id, made.record.expiresAt - now);
    }
    if (made.publish) this.deps.bus.publish({ type: made.publish, approval, remote: false });
    return approval;
  }

  /** One approver's verdict. The rules are the machine's; this commits them under the request's decision lock. */
  async decide(approver: Principal, ref: string, verdict: Verdict, reason: string, ctx: RequestContext = {}): Promise<ApprovalView> {
    return (await this.decideWith(approver, ref, verdict, reason, ctx)).approval;
  }

  /**
   * A verdict that may ask for a standing approval (`grant`): checked against the caps before
   * anything is written (`grant_not_allowed` decides nothing), recorded with the vote, and made
   * when the request is approved and every counted approval asked for one (grants.ts, combineTerms).
   */
  async decideWith(
    approver: Principal,
    ref: string,
    verdict: Verdict,
    reason: string,
    ctx: RequestContext = {},
    options: { grant?: GrantRequest | undefined } = {},
  ): Promise<{ approval: ApprovalView; grant: GrantView | null }> {
    const { store, clock, views, executor } = this.deps;
    views.requireApprover(approver, 'approval.manage');
    const terms = options.grant ? termsOf(options.grant) : undefined;
    if (terms && verdict === 'reject') throw new AppError('validation_failed', 'a standing approval goes with an approval, not a rejection');
    const id = await views.resolveId(ref);
    let granted: ApprovalGrant | null = null;
    const done = await store.withTransaction(async (tx) => {
      const record = await tx.approvals.lockForDecision(id);
      if (!record) throw new AppError('not_found', `approval request ${ref} not found`);
      if (terms && record.status === 'pending') assertGrantable(terms, record.sensitivity, parseArgs(record.arguments), this.grantCaps);
      const event: MachineEvent = {
        type: 'decide',
        approverId: approver.id,
        verdict,
        reason,
        now: clock.now(),
        decisions: castDecisions(await tx.approvals.decisions(id)),
        httpRequestId: ctx.httpRequestId,
        ...(terms ? { grant: JSON.stringify(terms) } : {}),
      };
      const t = transition(record, event, this.deps.settings);
      if (t.kind === 'refused') {
        // A decision after the deadline expires the request (committed), and is refused all the same.
        const expired = t.then ? await commitStep(tx, this.deps.audit, record, t.then) : undefined;
        return { refused: t, record: expired, step: t.then };
      }
      let next = await commitStep(tx, this.deps.audit, record, t);
      if (!next) throw new Error(`request ${id} changed under its decision lock`);
      if (t.outcome === 'approved') granted = await this.grantOnApproval(tx, next);
      const preclaim = t.outcome === 'approved' ? await executor.claimFor(tx, next) : null;
      if (preclaim) next = (await commitStep(tx, this.deps.audit, next, preclaim.step)) ?? next;
      return { refused: undefined, record: next, step: t, preclaim: preclaim && next.executionStatus === 'running' ? preclaim : null };
    });
    if (done.refused) {
      if (done.record && done.step) await this.afterStep(done.step, done.record);
      const { reason: why, message, status } = done.refused;
      if (why === 'not_pending') throw new AppError('not_pending', message, { status });
      throw new AppError(why === 'self_approval' ? 'self_approval' : 'already_decided', message);
    }
    if (done.preclaim) done.preclaim.waiter.claimed = true;
    const approval = await this.afterStep(done.step!, done.record!);
    return { approval, grant: granted ? toGrantView(granted, clock.now()) : null };
  }

  /** The most a standing approval may allow, per sensitivity (null: none may be made), as configured. */
  get grantCaps(): GrantCaps {
    return this.deps.settings.grantCaps ?? NO_GRANTS;
  }

  /**
   * What approving this request with `grant` would allow, computed by the same rules the approval
   * applies (termsOf, assertGrantable, combineTerms), without deciding anything: the console shows
   * it for the approver to confirm. Refused exactly as the approval would refuse the grant.
   */
  async previewGrant(approver: Principal, ref: string, grant: GrantRequest): Promise<GrantPreview> {
    const { views, store } = this.deps;
    views.requireApprover(approver, 'approval.manage');
    const terms = termsOf(grant);
    const record = await store.approvals.request(await views.resolveId(ref));
    if (!record) throw new AppError('not_found', `approval request ${ref.slice(0, 64)} not found`);
    if (record.status !== 'pending') throw new AppError('not_pending', `approval request ${record.id.slice(0, 8)} is already ${record.status}`);
    const args = parseArgs(record.arguments);
    assertGrantable(terms, record.sensitivity, args, this.grantCaps);
    const combined = combineTerms([terms], record.sensitivity, this.grantCaps)!;
    const counted = (await store.approvals.decisions(record.id)).filter((d) => d.verdict === 'approve' && !d.withdrawn).length;
    return {
      tool: record.tool,
      requester: record.requesterId,
      sensitivity: record.sensitivity,
      scope: combined.scope,
      scopeText: describeScope(combined.scope, combined.match),
      match: combined.match,
      arguments: args,
      seconds: Math.floor(combined.ms / 1000),
      uses: combined.uses,
      requiredApprovals: record.requiredApprovals,
      approvals: counted,
    };
  }

  /** In the approving transaction: the grant its counted approvals asked for, if every one did. */
  private async grantOnApproval(tx: Transaction, record: ApprovalRecord): Promise<ApprovalGrant | null> {
    const counted = (await tx.approvals.decisions(record.id)).filter((d) => d.verdict === 'approve' && !d.withdrawn);
    if (counted.length === 0 || counted.some((d) => d.grant === null)) return null;
    const terms = combineTerms(
      counted.map((d) => JSON.parse(d.grant!) as GrantTerms),
      record.sensitivity,
      this.grantCaps,
    );
    if (!terms) return null;
    const now = this.deps.clock.now();
    const grant: ApprovalGrant = {
      id: this.deps.ids.uuid(),
      requestId: record.id,
      tool: record.tool,
      requesterId: record.requesterId,
      sensitivity: record.sensitivity,
      scope: terms.scope,
      arguments: canonicalize(parseArgs(record.arguments)) ?? '{}',
      matchers: JSON.stringify(terms.match),
      approvers: JSON.stringify(counted.map((d) => d.approverId)),
      createdAt: now,
      expiresAt: now + terms.ms,
      usesLeft: terms.uses,
      maxUses: terms.uses,
      uses: 0,
      revokedAt: null,
      revokedBy: null,
      revokeReason: null,
    };
    await tx.approvals.insertGrant(grant);
    await this.deps.audit.append(tx, {
      actor: counted.at(-1)!.approverId,
      action: 'grant.created',
      tool: record.tool,
      requestId: record.id,
      status: 'active',
      details: { grant: grant.id, requester: record.requesterId, scope: grant.scope, match: terms.match, expiresAt: new Date(grant.expiresAt).toISOString(), maxUses: grant.maxUses, approvers: counted.map((d) => d.approverId) },
    });
    return grant;
  }

  /**
   * A call that a live standing approval covers: approved at once, in one transaction that uses
   * one of the grant's calls (never more than it has, whatever runs at once), with the grant named
   * on the request and in its audit event. Null when no grant covers it (it is asked for as usual).
   */
  async openUnderGrant(
    principal: Principal,
    tool: string,
    args: Record<string, unknown>,
    policy: { sensitivity: Sensitivity; version: string },
    mode: ApprovalMode,
    ctx: RequestContext,
  ): Promise<ApprovalView | null> {
    const { store, clock, settings } = this.deps;
    if (principal.anonymous || !this.deps.settings.grantCaps) return null;
    const now = clock.now();
    const candidates = (await store.approvals.liveGrantsFor(tool, principal.id, now)).filter((g) => g.sensitivity === policy.sensitivity && grantCovers(g, args));
    if (candidates.length === 0) return null;
    const made = await store.withTransaction(async (tx) => {
      for (const candidate of candidates) {
        if (!(await this.grantStillStands(tx, candidate))) continue;
        const used = await tx.approvals.consumeGrant(candidate.id, now);
        if (!used) continue;
        const opened = open(
          {
            ...this.newRequest(principal, tool, args, policy, mode, ctx, now),
            argumentsJson: JSON.stringify(args),
            auditArguments: args,
            autoApproved: `standing approval ${used.id.slice(0, 8)} (${used.usesLeft === null ? 'no call limit' : `${used.usesLeft} calls left`})`,
            grantId: used.id,
          },
          settings,
        );
        // A decision-only request has nothing to run; the others wait for the executor's claim.
        const record = { ...opened.record, executionStatus: mode === 'decision' ? ('none' as const) : ('pending' as const) };
        await tx.approvals.insertRequest(record);
        for (const entry of opened.audit) await this.deps.audit.append(tx, entry);
        return record;
      }
      return null;
    });
    return made ? this.deps.views.present(made, []) : null;
  }

  /** What every new request records of its call: who asks, for what, under which policy, from where. */
  private newRequest(principal: Principal, tool: string, args: Record<string, unknown>, policy: { sensitivity: Sensitivity; version: string }, mode: ApprovalMode, ctx: RequestContext, now: number) {
    return {
      id: this.deps.ids.uuid(),
      tool,
      requester: { id: principal.id, role: principal.role, tokenId: principal.tokenId ?? null },
      sensitivity: policy.sensitivity,
      mode,
      instanceId: this.deps.instanceId,
      callHash: callHash({ tool, arguments: args, requester: principal.id, policyVersion: policy.version }),
      policyVersion: policy.version,
      now,
      httpRequestId: ctx.httpRequestId,
    };
  }

  /** A grant dies with its requester or any of its approvers disabled, or an approver who may no longer approve. */
  private async grantStillStands(tx: Transaction, grant: ApprovalGrant): Promise<boolean> {
    const requester = await tx.identity.user(grant.requesterId);
    if (!requester?.active) return false;
    for (const id of JSON.parse(grant.approvers) as string[]) {
      const approver = await tx.identity.user(id);
      if (!approver?.active || !this.deps.canApprove(approver.role)) return false;
    }
    return true;
  }

  /** Standing approvals, newest first (`all`: revoked, expired and used-up ones too). */
  async listGrants(viewer: Principal, options: { all?: boolean; limit?: number } = {}): Promise<GrantView[]> {
    this.deps.views.requireApprover(viewer, 'approval.view');
    const now = this.deps.clock.now();
    const grants = await this.deps.store.approvals.listGrants({ limit: options.limit ?? 200, ...(options.all ? {} : { liveAt: now }) });
    return grants.map((g) => toGrantView(g, now));
  }

  /** Revokes a standing approval at once: no call it covered runs from now on. */
  async revokeGrant(approver: Principal, ref: string, reason: string, ctx: RequestContext = {}): Promise<GrantView> {
    const { store, clock } = this.deps;
    this.deps.views.requireApprover(approver, 'approval.manage');
    const id = await this.resolveGrantId(ref);
    const now = clock.now();
    const revoked = await store.withTransaction(async (tx) => {
      const done = await tx.approvals.revokeGrant(id, approver.id, reason, now);
      if (!done) return undefined;
      await this.deps.audit.append(tx, { actor: approver.id, action: 'grant.revoked', tool: done.tool, requestId: done.requestId, status: 'revoked', details: { grant: id, reason }, httpRequestId: ctx.httpRequestId });
      return done;
    });
    if (!revoked) throw new AppError('not_pending', `standing approval ${ref.slice(0, 64)} is already revoked`);
    return toGrantView(revoked, now);
  }

  private async resolveGrantId(ref: string): Promise<string> {
    const normalized = ref.trim().toLowerCase();
    if (/^[0-9a-f-]{36}$/.test(normalized) && (await this.deps.store.approvals.grantById(normalized))) return normalized;
    if (/^[0-9a-f]{8,}$/.test(normalized)) {
      const matches = (await this.deps.store.approvals.listGrants({ limit: 10_000 })).filter((g) => g.id.replace(/-/g, '').startsWith(normalized));
      if (matches.length === 1) return matches[0]!.id;
      if (matches.length > 1) throw new AppError('ambiguous_id', `"${normalized}" matches more than one standing approval; give more characters`);
    }
    throw new AppError('not_found', `no standing approval matches "${ref.slice(0, 64)}"`);
  }

  /** The requester withdraws a pending request. */
  async cancelByRequester(principal: Principal, ref: string, ctx: RequestContext = {}): Promise<ApprovalView> {
    const { views, store } = this.deps;
    const id = await views.resolveId(ref);
    const record = await store.approvals.request(id);
    if (!record) throw new AppError('not_found', `approval request ${ref} not found`);
    if (record.requesterId !== principal.id) {
      if (views.canView(principal)) throw new AppError('permission_denied', 'only the requester may cancel a request');
      throw new AppError('not_found', `no approval request matches "${ref.slice(0, 64)}"`);
    }
    if (!(await this.cancel(id, principal.id, 'cancelled by the requester', ctx))) {
      throw new AppError('not_pending', `request ${record.shortId} is already ${(await store.approvals.request(id))?.status}`);
    }
    return views.viewOf(id);
  }

  /** pending → cancelled; false when it was no longer pending. */
  async cancel(id: string, actor: string, reason: string, ctx: RequestContext = {}): Promise<boolean> {
    return this.move(id, { type: 'cancel', actor, reason, now: this.deps.clock.now(), httpRequestId: ctx.httpRequestId });
  }

  /** pending → expired if its time has come; safe to call from any timer or sweep. */
  async expire(id: string): Promise<boolean> {
    this.expiryTimers.delete(id);
    return this.move(id, { type: 'expire', now: this.deps.clock.now() });
  }

  /** Expires every overdue pending request (the per-request timers' safety net). */
  async expireDue(): Promise<number> {
    let n = 0;
    for (const record of await this.deps.store.approvals.pendingDueBy(this.deps.clock.now())) if (await this.expire(record.id)) n++;
    return n;
  }

  /** Expires every pending request now, whatever its deadline (the rollback path: nobody will decide them). */
  async expireAllPending(reason: string): Promise<number> {
    const { store, clock } = this.deps;
    let n = 0;
    for (let records = await store.approvals.pendingDueBy(Number.MAX_SAFE_INTEGER); records.length > 0; records = await store.approvals.pendingDueBy(Number.MAX_SAFE_INTEGER)) {
      for (const record of records) if (await this.move(record.id, { type: 'expire', now: clock.now(), reason, force: true })) n++;
    }
    return n;
  }

  /** Requests that another service of this process resolved (user management cancels a disabled requester's): wake and tell. */
  async resolvedHere(ids: readonly string[]) {
    for (const id of ids) {
      const record = await this.deps.store.approvals.request(id);
      if (record) this.afterResolved(await this.deps.views.view(record));
    }
  }

  /** Another process resolved it (the change feed read so): this process's timer for it would only linger until it fires. */
  resolvedElsewhere(id: string) {
    this.disarmExpiry(id);
  }

  /** Clears every expiry timer (shutdown); the sweep of whichever gateway runs next expires the rest. */
  stopTimers() {
    for (const timer of this.expiryTimers.values()) clearTimeout(timer);
    this.expiryTimers.clear();
  }

  counts() {
    return { expiryTimers: this.expiryTimers.size };
  }

  private async move(id: string, event: MachineEvent): Promise<boolean> {
    const done = await this.deps.store.withTransaction(async (tx) => {
      const record = await tx.approvals.request(id);
      if (!record) return undefined;
      const t = transition(record, event, this.deps.settings);
      if (t.kind !== 'step') return undefined;
      const next = await commitStep(tx, this.deps.audit, record, t);
      return next ? { step: t, record: next } : undefined;
    });
    if (done) await this.afterStep(done.step, done.record);
    return done !== undefined;
  }

  /** After the commit: tell the bus (waiters, sockets, metrics), and for a resolution the rest. */
  private async afterStep(step: Step, record: ApprovalRecord): Promise<ApprovalView> {
    const approval = await this.deps.views.view(record);
    if (step.publish === 'approval.resolved') this.afterResolved(approval);
    else if (step.publish) this.deps.bus.publish({ type: step.publish, approval, remote: false });
    return approval;
  }

  private afterResolved(approval: ApprovalView) {
    this.disarmExpiry(approval.id);
    const verdict = approval.status === 'approved' ? 'approve' : approval.status === 'rejected' ? 'reject' : approval.status;
    if (verdict !== 'pending') {
      this.deps.metrics?.decided?.(verdict, approval.sensitivity, Date.parse(approval.decidedAt ?? approval.requestedAt) - Date.parse(approval.requestedAt));
    }
    this.deps.bus.publish({ type: 'approval.resolved', approval, remote: false });
    if (approval.status === 'approved' && approval.mode === 'async') this.deps.executor.runAsync(approval.id);
  }

  private armExpiry(id: string, delayMs: number) {
    const timer = setTimeout(() => {
      // A failed expiry is retried by the expiry sweep within a polling interval.
      this.expire(id).catch((err: Error) => this.deps.logger.warn({ requestId: id, err: err.message }, 'could not expire a request on its timer'));
    }, Math.max(0, delayMs));
    timer.unref();
    this.expiryTimers.set(id, timer);
  }

  private disarmExpiry(id: string) {
    const timer = this.expiryTimers.get(id);
    if (timer) clearTimeout(timer);
    this.expiryTimers.delete(id);
  }
}

function parseArgs(json: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(json);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
