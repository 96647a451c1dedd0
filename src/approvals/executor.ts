import type { AuditLog } from '../audit/audit.service.js';
import { AppError } from '../core/errors.js';
import type { Persistence, Transaction } from '../core/persistence.js';
import type { ApprovalBus } from '../events/bus.js';
import type { Logger } from '../logger.js';
import type { Principal } from '../policy/policy.service.js';
import type { CallToolResult, ToolExecutor } from '../tools/upstreams.js';
import { needsApproval, type ApprovalView, type Sensitivity } from './approval.js';
import type { ApprovalRecord } from './approval-store.js';
import { isRefusal, REFUSED_PREFIX, transition, UNBOUND_REASON, type MachineSettings, type Step } from './machine.js';
import { callHash } from './binding.js';
import { claimTransition, commitStep } from './steps.js';
import type { ApprovalViews } from './views.js';
import type { Waiter, Waiters } from './waiters.js';

/** How an attempt to run an approved request ended (an upstream that fails throws its AppError, with the approval). */
export type RunEnd =
  | { kind: 'ran'; result: CallToolResult; approval: ApprovalView }
  /** Its requester lost the power that made it (disabled, token revoked) before it ran: it never runs. */
  | { kind: 'refused'; approval: ApprovalView; message: string }
  /** Someone else claimed or ended it first. */
  | { kind: 'taken'; approval: ApprovalView; message: string }
  /** What was about to run is not the call that was approved (its canonical hash differs): it never ran. */
  | { kind: 'unbound'; approval: ApprovalView; message: string };

export interface ExecutorDeps {
  store: Persistence;
  audit: AuditLog;
  bus: ApprovalBus;
  tools: ToolExecutor;
  views: ApprovalViews;
  waiters: Waiters;
  clock: { now(): number };
  logger: Logger;
  instanceId: string;
  settings: MachineSettings & {
    /** False for processes with no upstreams (a decider on the same database): they decide but never claim runs. */
    runsTools?: boolean | undefined;
  };
  metrics?: { upstreamCall?(tool: string, outcome: 'ok' | 'tool_error' | 'error', ms: number): void } | undefined;
}

export interface RunContext {
  signal?: AbortSignal | undefined;
  httpRequestId?: string | undefined;
}

/**
 * Runs tools: once approved, a request's run is claimed (a compare-and-set, so it runs at most
 * once across every process), run, and recorded. Also the direct runs of tools that need no
 * approval, and the ends of runs that will never happen (a caller gone, a gateway dead).
 */
export class Executor {
  constructor(private readonly deps: ExecutorDeps) {}

  get runsTools(): boolean {
    return this.deps.settings.runsTools !== false;
  }

  /**
   * The preclaim, inside the approving transaction: when the approved request's caller waits in
   * this process, its run is claimed right there, one commit fewer per approval. Returns the claim
   * step to commit (the caller's Waiter is told once it has committed, see `claimedFor`), or null.
   */
  async claimFor(tx: Transaction, approved: ApprovalRecord): Promise<{ waiter: Waiter; step: Step } | null> {
    if (approved.mode !== 'wait' || approved.instanceId !== this.deps.instanceId || !this.runsTools) return null;
    const waiter = this.deps.waiters.heldHere(approved.id);
    if (!waiter) return null;
    const t = await claimTransition(tx, approved, { instanceId: this.deps.instanceId, now: this.deps.clock.now(), httpRequestId: waiter.httpRequestId }, this.deps.settings);
    return t.kind === 'step' ? { waiter, step: t } : null;
  }

  /**
   * Runs an approved request once. `claimed`: the approving transaction already claimed it for
   * this caller (claimFor); else it is claimed here, and only one claimant in any process wins.
   */
  async run(id: string, ctx: RunContext = {}, options: { claimed?: boolean } = {}): Promise<RunEnd> {
    const { store, clock } = this.deps;
    let record = await store.approvals.request(id);
    if (!record) throw new AppError('not_found', `approval request ${id} not found`);
    let claimed = options.claimed === true && record.executionStatus === 'running' && record.executionInstanceId === this.deps.instanceId;
    if (!options.claimed) {
      const claim = await store.withTransaction(async (tx) => {
        const current = (await tx.approvals.request(id)) ?? record!;
        const t = await claimTransition(tx, current, { instanceId: this.deps.instanceId, now: clock.now(), httpRequestId: ctx.httpRequestId }, this.deps.settings);
        if (t.kind !== 'step') return undefined;
        const next = await commitStep(tx, this.deps.audit, current, t);
        return next ? { step: t, next } : undefined;
      });
      if (claim?.step.outcome === 'claimed') {
        claimed = true;
        record = claim.next;
      } else if (claim) {
        this.publishExecuted(await this.deps.views.view(claim.next));
      }
    }
    if (!claimed) {
      const approval = await this.deps.views.viewOf(id);
      if (isRefusal(approval.execution.error)) {
        return { kind: 'refused', approval, message: `request ${record.shortId} was approved but not run: ${approval.execution.error!.slice(REFUSED_PREFIX.length)}` };
      }
      return { kind: 'taken', approval, message: `request ${record.shortId} is already running or has run` };
    }
    // The binding: what is about to run must hash to what was approved, or it never runs.
    const args = parseArguments(record.arguments);
    const runHash = args === undefined ? 'unparseable arguments' : callHash({ tool: record.tool, arguments: args, requester: record.requesterId, policyVersion: record.policyVersion ?? '' });
    if (args === undefined || record.callHash === null || runHash !== record.callHash) return this.refuseUnbound(record, runHash, ctx);
    const started = clock.now();
    let result: CallToolResult;
    try {
      result = await this.invoke(record.tool, args, ctx.signal);
    } catch (err) {
      const approval = await this.record(record, { status: 'failed', result: null, error: (err as Error).message, startedAt: started, httpRequestId: ctx.httpRequestId });
      throw err instanceof AppError ? err.about(approval) : err;
    }
    const approval = await this.record(record, {
      status: result.isError ? 'failed' : 'succeeded',
      result: JSON.stringify(result),
      error: result.isError ? 'the tool reported an error' : null,
      startedAt: started,
      httpRequestId: ctx.httpRequestId,
    });
    return { kind: 'ran', result, approval };
  }

  private async refuseUnbound(record: ApprovalRecord, runHash: string, ctx: RunContext): Promise<RunEnd> {
    const running: ApprovalRecord = { ...record, executionStatus: 'running' };
    const t = transition(running, { type: 'unbound', expected: record.callHash, actual: runHash, now: this.deps.clock.now(), httpRequestId: ctx.httpRequestId }, this.deps.settings);
    const next = t.kind === 'step' ? await this.deps.store.withTransaction((tx) => commitStep(tx, this.deps.audit, running, t)) : undefined;
    const approval = next ? await this.deps.views.view(next) : await this.deps.views.viewOf(record.id);
    this.publishExecuted(approval);
    this.deps.logger.warn({ requestId: record.id, approvedHash: record.callHash, runHash }, 'refused to run a request whose call differs from the one approved');
    return { kind: 'unbound', approval, message: `request ${record.shortId} was not run: ${UNBOUND_REASON}` };
  }

  private async record(
    record: ApprovalRecord,
    outcome: { status: 'succeeded' | 'failed'; result: string | null; error: string | null; startedAt: number; httpRequestId: string | undefined },
  ): Promise<ApprovalView> {
    const now = this.deps.clock.now();
    const running: ApprovalRecord = { ...record, executionStatus: 'running' };
    const t = transition(running, { type: 'finish', ...outcome, now }, this.deps.settings);
    const next = t.kind === 'step' ? await this.deps.store.withTransaction((tx) => commitStep(tx, this.deps.audit, running, t)) : undefined;
    const approval = next ? await this.deps.views.view(next) : await this.deps.views.viewOf(record.id);
    this.publishExecuted(approval);
    return approval;
  }

  /** Fails an approved run that will never happen here: its caller went away before the tool ran. */
  async abandon(id: string, reason: string): Promise<boolean> {
    return this.end(id, { type: 'abandon', reason, now: this.deps.clock.now() });
  }

  /** Marks a run of a dead gateway `interrupted`: it may or may not have run, and it is never retried. */
  async interrupt(id: string, reason: string): Promise<boolean> {
    return this.end(id, { type: 'interrupt', reason, now: this.deps.clock.now() });
  }

  private async end(id: string, event: { type: 'abandon' | 'interrupt'; reason: string; now: number }): Promise<boolean> {
    const next = await this.deps.store.withTransaction(async (tx) => {
      const record = await tx.approvals.request(id);
      if (!record) return undefined;
      const t = transition(record, event, this.deps.settings);
      return t.kind === 'step' ? commitStep(tx, this.deps.audit, record, t) : undefined;
    });
    if (next) this.publishExecuted(await this.deps.views.view(next));
    return next !== undefined;
  }

  /** Runs an approved async request here, if no other instance has claimed it; never throws. */
  runAsync(id: string) {
    if (!this.runsTools) return;
    this.runInBackground(id);
  }

  private runInBackground(id: string, options: { claimed?: boolean } = {}) {
    this.run(id, {}, options).then(
      (end) => {
        if (end.kind === 'refused') this.deps.logger.info({ requestId: id, err: end.message }, 'async execution refused');
      },
      (err: Error) => this.deps.logger.warn({ requestId: id, err: err.message }, 'async execution failed'),
    );
  }

  /**
   * Claims and starts approved async requests that nobody runs yet (decided elsewhere, or before a
   * restart), oldest first, up to `limit`; returns how many it started. Each claim locks its row
   * and skips rows another instance is claiming, so instances share the backlog.
   */
  async runApprovedAsync(limit = 100): Promise<number> {
    if (!this.runsTools) return 0;
    const { store, clock, settings, instanceId } = this.deps;
    let started = 0;
    while (started < limit) {
      const claim = await store.withTransaction(async (tx) => {
        const record = await tx.approvals.lockNextApprovedAsync();
        if (!record) return undefined;
        const t = await claimTransition(tx, record, { instanceId, now: clock.now() }, settings);
        if (t.kind !== 'step') return undefined;
        const next = await commitStep(tx, this.deps.audit, record, t);
        return next ? { step: t, next } : undefined;
      });
      if (!claim) break;
      if (claim.step.outcome !== 'claimed') {
        // Refused (its requester lost the power that made it): ended, never run.
        this.publishExecuted(await this.deps.views.view(claim.next));
        continue;
      }
      started++;
      this.runInBackground(claim.next.id, { claimed: true });
    }
    return started;
  }

  /** A tool that needs no approval (or the workflow is off): run at once, audited whether or not the caller stays. */
  async runNow(principal: Principal, tool: string, args: Record<string, unknown>, sensitivity: Sensitivity, ctx: RunContext): Promise<CallToolResult> {
    const started = this.deps.clock.now();
    const unapproved = needsApproval(sensitivity);
    const audit = (status: string, details: Record<string, unknown>) =>
      this.deps.store.withTransaction((tx) =>
        this.deps.audit.append(tx, { actor: principal.id, action: 'tool.executed', tool, status, durationMs: this.deps.clock.now() - started, details, httpRequestId: ctx.httpRequestId }),
      );
    try {
      // No abort signal: a direct call is short, and it is audited whether or not the caller stays.
      const result = await this.invoke(tool, args);
      await audit(
        result.isError ? 'tool_error' : 'succeeded',
        unapproved ? { arguments: args, sensitivity, unapproved: true, reason: 'approval workflow disabled' } : { arguments: args, sensitivity },
      );
      return result;
    } catch (err) {
      await audit('failed', { arguments: args, sensitivity, error: (err as Error).message });
      throw err;
    }
  }

  private async invoke(tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    const started = performance.now();
    try {
      const result = await this.deps.tools.call(tool, args, signal ? { signal } : {});
      this.deps.metrics?.upstreamCall?.(tool, result.isError ? 'tool_error' : 'ok', performance.now() - started);
      return result;
    } catch (err) {
      this.deps.metrics?.upstreamCall?.(tool, 'error', performance.now() - started);
      throw err;
    }
  }

  private publishExecuted(approval: ApprovalView) {
    this.deps.bus.publish({ type: 'approval.executed', approval, remote: false });
  }
}

function parseArguments(json: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(json);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
