import type { AuditLog } from '../audit/audit.service.js';
import { AppError } from '../core/errors.js';
import type { Persistence } from '../core/persistence.js';
import type { Logger } from '../logger.js';
import type { PolicyService, Principal, ResolvedPolicy } from '../policy/policy.service.js';
import type { CallToolResult, ToolExecutor } from '../tools/upstreams.js';
import { needsApproval, TOOL_NAME, type ApprovalView, type Sensitivity } from './approval.js';
import type { Executor } from './executor.js';
import type { Requests } from './requests.js';
import type { Waiters, WaitEnd } from './waiters.js';

/**
 * What the gate did with a tool call. Every end is a value the transport switches on (HTTP in
 * the tool route, MCP in the MCP server); `outcomeError` gives the catalogue error of those that
 * did not run the tool.
 */
export type GateOutcome =
  /** It needed no approval (or the workflow is off) and ran at once. */
  | { kind: 'ran'; result: CallToolResult; sensitivity: Sensitivity }
  /** `Prefer: respond-async`: the request is pending; the caller comes back for it. */
  | { kind: 'accepted'; approval: ApprovalView }
  | { kind: 'approved-and-ran'; result: CallToolResult; approval: ApprovalView }
  | { kind: 'rejected'; approval: ApprovalView; message: string }
  | { kind: 'expired'; approval: ApprovalView; message: string }
  /** Cancelled while it waited: by its caller going away, its requester losing power, a dead gateway, or this one stopping. */
  | { kind: 'cancelled'; approval?: ApprovalView | undefined; message: string; shuttingDown: boolean }
  /** Approved, but its requester lost the power that made it before it ran: it never runs. */
  | { kind: 'refused'; approval: ApprovalView; message: string }
  /** Approved, but what was about to run is not the call that was approved (the binding): it never runs. */
  | { kind: 'unbound'; approval: ApprovalView; message: string }
  /** Approved, but its run was claimed or ended by someone else. */
  | { kind: 'not-run'; message: string };

/** The catalogue error a transport answers for an outcome in which the tool did not run; null when it ran or was accepted. */
export function outcomeError(outcome: GateOutcome): AppError | null {
  switch (outcome.kind) {
    case 'ran':
    case 'accepted':
    case 'approved-and-ran':
      return null;
    case 'rejected':
      return new AppError('approval_rejected', outcome.message, { approval: outcome.approval });
    case 'expired':
      return new AppError('approval_expired', outcome.message, { approval: outcome.approval });
    case 'cancelled':
      return new AppError(outcome.shuttingDown ? 'shutting_down' : 'approval_cancelled', outcome.message, outcome.approval ? { approval: outcome.approval } : {});
    case 'refused':
      return new AppError('access_revoked', outcome.message, { approval: outcome.approval });
    case 'unbound':
      return new AppError('binding_mismatch', outcome.message, { approval: outcome.approval });
    case 'not-run':
      return new AppError('not_pending', outcome.message);
  }
}

export interface GateDeps {
  store: Persistence;
  audit: AuditLog;
  policy: PolicyService;
  tools: Pick<ToolExecutor, 'get'>;
  requests: Requests;
  waiters: Waiters;
  executor: Executor;
  logger: Logger;
  settings: { rbacEnabled: boolean; approvalWorkflowEnabled: boolean };
}

export interface CallContext {
  signal?: AbortSignal | undefined;
  httpRequestId?: string | undefined;
  /** Called once the request is pending (before the wait), e.g. to send MCP progress notifications. */
  onPending?: ((approval: ApprovalView) => void) | undefined;
}

const GONE_BEFORE_RUN = 'the caller went away before the tool ran';

/** The gate in front of the tools: authorise, then run now or ask, wait and run. */
export class Gate {
  private closed = false;

  constructor(private readonly deps: GateDeps) {}

  get isShuttingDown(): boolean {
    return this.closed;
  }

  /** Refuses every call from now on (503); callers already waiting are the core's shutdown's to answer. */
  close() {
    this.closed = true;
  }

  /** Resolves the tool's policy and checks the caller may call it. */
  async authorizeTool(principal: Principal, toolName: string, options: { requireUpstream: boolean }): Promise<ResolvedPolicy> {
    const { tools, policy, settings } = this.deps;
    if (!TOOL_NAME.test(toolName)) throw new AppError('unknown_tool', 'unknown tool: a tool name is 1-128 letters, digits, "_", "-", "." or "/"');
    const entry = tools.get(toolName);
    // Without an upstream, only a name the policy or catalog spells out exactly: a glob names no tool.
    if (!entry && (options.requireUpstream || !policy.namesExactly(toolName))) {
      throw new AppError('unknown_tool', `unknown tool "${toolName.slice(0, 200)}"`);
    }
    const resolved = policy.resolve(toolName, entry);
    if (settings.rbacEnabled && !resolved.roles.has(principal.role)) {
      await this.deps.store.withTransaction((tx) =>
        this.deps.audit.append(tx, { actor: principal.id, action: 'tool.denied', tool: toolName, status: 'denied', details: { role: principal.role } }),
      );
      throw new AppError('permission_denied', `role "${principal.role}" may not call "${toolName}"`);
    }
    return resolved;
  }

  /**
   * The rules on argument values (toolgate.json `when`): deny > approval > allow. A denying rule
   * refuses the call (`tool.denied`, 403 policy_denied); a raising one makes it more sensitive;
   * shadow rules change nothing and leave a `policy.shadow` audit event saying what they would have done.
   */
  private async judgeArguments(principal: Principal, toolName: string, args: Record<string, unknown>, resolved: ResolvedPolicy, ctx: CallContext): Promise<Sensitivity> {
    const { policy, store, audit } = this.deps;
    if (!policy.hasArgumentRules(toolName)) return resolved.sensitivity;
    const judged = policy.judgeArguments(toolName, args, resolved.sensitivity);
    if (judged.shadow.length > 0 || judged.denied) {
      await store.withTransaction(async (tx) => {
        if (judged.shadow.length > 0) {
          await audit.append(tx, {
            actor: principal.id,
            action: 'policy.shadow',
            tool: toolName,
            status: judged.shadowOutcome!.denied ? 'would_deny' : `would_be_${judged.shadowOutcome!.sensitivity}`,
            details: { arguments: args, rules: judged.shadow, wouldHave: judged.shadowOutcome, enforced: { sensitivity: judged.sensitivity, denied: judged.denied !== null } },
            httpRequestId: ctx.httpRequestId,
          });
        }
        if (judged.denied) {
          await audit.append(tx, { actor: principal.id, action: 'tool.denied', tool: toolName, status: 'denied', details: { arguments: args, rule: judged.denied.rule, reason: 'a policy rule on the arguments denies it' }, httpRequestId: ctx.httpRequestId });
        }
      });
    }
    if (judged.denied) throw new AppError('policy_denied', `policy rule ${judged.denied.rule} (tool "${judged.denied.tool}") denies this call of "${toolName}" for its arguments`);
    return judged.sensitivity;
  }

  /** Calls a tool through the gate: at once when it needs no approval, else after the decision. */
  async callTool(principal: Principal, toolName: string, args: Record<string, unknown>, mode: 'wait' | 'async', ctx: CallContext = {}): Promise<GateOutcome> {
    this.assertOpen();
    const sensitivity = await this.judgeArguments(principal, toolName, args, await this.authorizeTool(principal, toolName, { requireUpstream: true }), ctx);
    if (!this.deps.settings.approvalWorkflowEnabled || !needsApproval(sensitivity)) {
      const result = await this.deps.executor.runNow(principal, toolName, args, sensitivity, ctx);
      return { kind: 'ran', result, sensitivity };
    }
    const policy = { sensitivity, version: this.deps.policy.version };
    // A standing approval that covers the call lets it run without waiting.
    const granted = await this.deps.requests.openUnderGrant(principal, toolName, args, policy, mode, ctx);
    if (granted) {
      if (mode === 'async') {
        this.deps.executor.runAsync(granted.id);
        return { kind: 'accepted', approval: granted };
      }
      return this.runApproved(granted, ctx, false);
    }
    const created = await this.deps.requests.open(principal, toolName, args, policy, mode, ctx);
    if (mode === 'async') return { kind: 'accepted', approval: created };
    ctx.onPending?.(created);
    const end = await this.deps.waiters.untilDecided(created.id, ctx);
    return this.afterWaiting(created, principal, end, ctx);
  }

  /** Decision-only: the caller runs the tool itself once approved. */
  async requestDecision(principal: Principal, toolName: string, args: Record<string, unknown>, ctx: CallContext = {}): Promise<ApprovalView> {
    this.assertOpen();
    const sensitivity = await this.judgeArguments(principal, toolName, args, await this.authorizeTool(principal, toolName, { requireUpstream: false }), ctx);
    const { approvalWorkflowEnabled } = this.deps.settings;
    if (!approvalWorkflowEnabled || !needsApproval(sensitivity)) {
      const autoApproved = approvalWorkflowEnabled ? `${sensitivity} needs no approval` : 'approval workflow disabled';
      return this.deps.requests.open(principal, toolName, args, { sensitivity, version: this.deps.policy.version }, 'decision', ctx, { autoApproved });
    }
    const policy = { sensitivity, version: this.deps.policy.version };
    return (await this.deps.requests.openUnderGrant(principal, toolName, args, policy, 'decision', ctx)) ?? this.deps.requests.open(principal, toolName, args, policy, 'decision', ctx);
  }

  private async afterWaiting(created: ApprovalView, principal: Principal, end: WaitEnd, ctx: CallContext): Promise<GateOutcome> {
    if (end.kind === 'shutting-down') return { kind: 'cancelled', message: 'the gateway is shutting down; the request was cancelled', shuttingDown: true };
    if (end.kind === 'caller-gone') {
      try {
        // Decided in the moment it went away: then the approved run is failed instead, never run.
        if (!(await this.deps.requests.cancel(created.id, principal.id, 'caller disconnected'))) await this.deps.executor.abandon(created.id, GONE_BEFORE_RUN);
      } catch (err) {
        this.deps.logger.error({ err, requestId: created.id }, 'could not cancel the request of a caller that went away');
      }
      return { kind: 'cancelled', message: 'the caller went away; the request was cancelled', shuttingDown: false };
    }
    const decided = end.approval;
    switch (decided.status) {
      case 'approved': {
        return this.runApproved(decided, ctx, end.claimed);
      }
      case 'rejected':
        return { kind: 'rejected', approval: decided, message: `request ${decided.shortId} was rejected: ${lastReason(decided)}` };
      case 'expired':
        return { kind: 'expired', approval: decided, message: `request ${decided.shortId} expired without a decision` };
      default:
        return { kind: 'cancelled', approval: decided, message: `request ${decided.shortId} was cancelled: ${decided.statusReason ?? ''}`.trim(), shuttingDown: this.closed };
    }
  }

  private async runApproved(decided: ApprovalView, ctx: CallContext, claimed: boolean | undefined): Promise<GateOutcome> {
    if (ctx.signal?.aborted) {
      await this.deps.executor.abandon(decided.id, GONE_BEFORE_RUN);
      return { kind: 'cancelled', message: GONE_BEFORE_RUN, shuttingDown: false };
    }
    const run = await this.deps.executor.run(decided.id, ctx, { claimed });
    if (run.kind === 'ran') return { kind: 'approved-and-ran', result: run.result, approval: run.approval };
    if (run.kind === 'refused') return { kind: 'refused', approval: run.approval, message: run.message };
    if (run.kind === 'unbound') return { kind: 'unbound', approval: run.approval, message: run.message };
    return { kind: 'not-run', message: run.message };
  }

  private assertOpen() {
    if (this.closed) throw new AppError('shutting_down', 'the gateway is shutting down');
  }
}

function lastReason(approval: ApprovalView): string {
  return approval.decisions.at(-1)?.reason ?? approval.statusReason ?? 'no reason given';
}
