import type { ApprovalEventType } from '../events/bus.js';
import type { ApprovalMode, ApprovalStatus, ExecutionStatus, Sensitivity, Verdict } from './approval.js';

/*
 * The approval state machine: every rule about what may happen to a request, and what each
 * change writes, in one place and with no I/O. A request:
 *
 *   (new) ─open─▶ pending ──decide: quorum reached──▶ approved
 *                    │──decide: any reject──────────▶ rejected
 *                    │──expire: deadline passed────▶ expired
 *                    └──cancel───────────────────────▶ cancelled
 *   (new) ─open, needs no approval─▶ approved
 *
 * and its execution (an approved `wait` or `async` request; `decision` requests stay `none`):
 *
 *   pending ─claim─▶ running ─finish─▶ succeeded | failed
 *      │               │──abandon────▶ failed        (the caller went away before the tool ran)
 *      │               └──interrupt──▶ interrupted   (its gateway died mid-run; never retried)
 *      │──claim, requester lost power──▶ failed "refused: …"
 *      └──abandon──▶ failed
 *
 * `transition(state, event, settings)` answers a Step (the compare-and-set to make, the decision
 * row to insert, the audit events to append in the same transaction, the bus event to publish
 * after the commit) or a Refusal (why nothing may change). The caller owns the transaction; a
 * Step's `change.from` is the state it was computed from, so the store's conditional UPDATE
 * fails, and nothing is written, when another process got there first.
 */

/**
 * Every audit action the approval core writes, and the bus event it stands for on the change
 * feed: what a gateway that did not make the change publishes when it reads the action back from
 * the shared audit log (null: nobody waits for it). The machine writes only these names and the
 * feed reads only through this table, so renaming or adding an action is a type error here, not
 * a silently lost wake-up in another process.
 */
export const FEED_EVENT_OF_ACTION = {
  'approval.requested': 'approval.requested',
  'approval.auto_approved': null,
  /** Approved at once by a standing approval (details.grant names it). */
  'approval.granted': null,
  'approval.decision': 'approval.updated',
  'approval.approved': 'approval.resolved',
  'approval.rejected': 'approval.resolved',
  'approval.expired': 'approval.resolved',
  'approval.cancelled': 'approval.resolved',
  'execution.started': null,
  'execution.succeeded': 'approval.executed',
  'execution.failed': 'approval.executed',
  'execution.interrupted': 'approval.executed',
  'execution.refused': 'approval.executed',
  'tool.executed': null,
  'tool.denied': null,
  /** Still pending after its sensitivity's escalation time; the escalation receivers were told (src/notify/escalation.ts). */
  'approval.escalated': null,
} as const satisfies Record<string, ApprovalEventType | null>;

export type CoreAction = keyof typeof FEED_EVENT_OF_ACTION;

/** The bus event another process's audit action stands for, or null when it wakes nobody. */
export function feedEventOf(action: string): ApprovalEventType | null {
  return Object.hasOwn(FEED_EVENT_OF_ACTION, action) ? FEED_EVENT_OF_ACTION[action as CoreAction] : null;
}

/** `execution.error` of an approved request refused at its claim; the rest says why. */
export const REFUSED_PREFIX = 'refused: ';

export function isRefusal(executionError: string | null): boolean {
  return executionError?.startsWith(REFUSED_PREFIX) ?? false;
}

/** What the machine reads of a request. A stored request record has (at least) these fields. */
export interface RequestState {
  id: string;
  shortId: string;
  tool: string;
  mode: ApprovalMode;
  requesterId: string;
  status: ApprovalStatus;
  requiredApprovals: number;
  requestedAt: number;
  expiresAt: number;
  decidedAt: number | null;
  statusReason: string | null;
  executionStatus: ExecutionStatus;
  executionInstanceId: string | null;
}

/** A decision already on the request; `counts` is false once its approver was disabled or lost approval.manage. */
export interface CastDecision {
  approverId: string;
  verdict: Verdict;
  counts: boolean;
}

/** An audit event to append in the transition's transaction; only the core's own actions. */
export interface CoreAuditEntry {
  actor: string;
  action: CoreAction;
  tool?: string | null;
  requestId?: string | null;
  status?: string | null;
  durationMs?: number | null;
  details?: Record<string, unknown>;
  httpRequestId?: string | null | undefined;
}

/** The conditional update a step makes: it applies only while the request is still in `from`. */
export type StateChange =
  | {
      kind: 'status';
      from: 'pending';
      to: Exclude<ApprovalStatus, 'pending'>;
      decidedAt: number;
      statusReason: string;
      /** Set with `approved`: `pending` when the gateway will run it, `none` for a decision-only request. */
      executionStatus?: 'none' | 'pending';
    }
  | { kind: 'claim'; from: 'pending'; to: 'running'; instanceId: string; startedAt: number }
  | { kind: 'finish'; from: 'running'; to: 'succeeded' | 'failed'; finishedAt: number; result: string | null; error: string | null }
  | { kind: 'end'; from: 'pending' | 'running'; to: 'failed' | 'interrupted'; finishedAt: number; error: string };

export interface NewDecision {
  requestId: string;
  approverId: string;
  verdict: Verdict;
  reason: string;
  now: number;
  /** The standing approval the approver asks for with this approval (JSON GrantTerms). */
  grant?: string | null | undefined;
}

export type StepOutcome =
  | 'approved'
  | 'rejected'
  | 'counted'
  | 'expired'
  | 'cancelled'
  | 'claimed'
  | 'refused'
  | 'succeeded'
  | 'failed'
  | 'abandoned'
  | 'interrupted';

export interface Step {
  kind: 'step';
  outcome: StepOutcome;
  /** The request as it is once the step is committed. */
  next: RequestState;
  /** null: the request row does not change (a vote short of the quorum). */
  change: StateChange | null;
  decision: NewDecision | null;
  audit: CoreAuditEntry[];
  /** Published on the bus after the commit; null when nobody needs to hear of it. */
  publish: ApprovalEventType | null;
}

export type RefusalReason =
  /** The request is no longer pending (or, for `expire`, not due yet); `status` says where it is. */
  | 'not_pending'
  | 'not_due'
  | 'self_approval'
  | 'already_decided'
  /** The execution is not where the event needs it (already claimed, finished, or never to run). */
  | 'execution_taken';

export interface Refusal {
  kind: 'refused';
  reason: RefusalReason;
  message: string;
  status: ApprovalStatus;
  /** A step to commit even so: a decision that came after the deadline expires the request. */
  then?: Step;
}

export type Transition = Step | Refusal;

export type MachineEvent =
  | { type: 'decide'; approverId: string; verdict: Verdict; reason: string; now: number; decisions: readonly CastDecision[]; approverCounts?: boolean; httpRequestId?: string | undefined; grant?: string | undefined }
  | { type: 'expire'; now: number; reason?: string; /** Expire whatever the deadline (nobody will decide any more). */ force?: boolean }
  | { type: 'cancel'; actor: string; reason: string; now: number; httpRequestId?: string | undefined }
  | { type: 'claim'; instanceId: string; now: number; /** Why the requester may no longer run it, or null. */ withdrawn: string | null; httpRequestId?: string | undefined }
  | { type: 'finish'; status: 'succeeded' | 'failed'; result: string | null; error: string | null; startedAt: number; now: number; httpRequestId?: string | undefined }
  | { type: 'abandon'; reason: string; now: number }
  | { type: 'interrupt'; reason: string; now: number }
  /** What is about to run is not the call that was approved (its canonical hash differs): it never runs. */
  | { type: 'unbound'; expected: string | null; actual: string; now: number; httpRequestId?: string | undefined };

export interface MachineSettings {
  allowSelfApproval: boolean;
}

export const EXPIRY_REASON = 'no decision before the timeout';

/** The one transition function: what `event` does to a request in `state`. */
export function transition(state: RequestState, event: MachineEvent, settings: MachineSettings): Transition {
  switch (event.type) {
    case 'decide':
      return decide(state, event, settings);
    case 'expire':
      return expire(state, event);
    case 'cancel':
      return cancel(state, event);
    case 'claim':
      return claim(state, event);
    case 'finish':
      return finish(state, event);
    case 'abandon':
      return endExecution(state, 'abandoned', 'failed', event.reason, event.now);
    case 'interrupt':
      return endExecution(state, 'interrupted', 'interrupted', event.reason, event.now);
    case 'unbound':
      return unbound(state, event);
  }
}

export const UNBOUND_REASON = 'the call about to run is not the one approved (its canonical hash differs)';

/** The binding's refusal, at the last moment before the tool runs: running → failed, never run. */
function unbound(state: RequestState, event: Extract<MachineEvent, { type: 'unbound' }>): Transition {
  if (state.executionStatus !== 'running') return refuse(state, 'execution_taken', `request ${state.shortId} is not running (its execution is ${state.executionStatus})`);
  const error = `${REFUSED_PREFIX}${UNBOUND_REASON}`;
  return step(state, 'refused', {
    change: { kind: 'end', from: 'running', to: 'failed', finishedAt: event.now, error },
    decision: null,
    audit: [
      {
        actor: 'system',
        action: 'execution.refused',
        tool: state.tool,
        requestId: state.id,
        status: 'failed',
        details: { error, code: 'binding_mismatch', approvedHash: event.expected, runHash: event.actual },
        httpRequestId: event.httpRequestId,
      },
    ],
    publish: 'approval.executed',
  });
}

function refuse(state: RequestState, reason: RefusalReason, message: string, then?: Step): Refusal {
  return { kind: 'refused', reason, message, status: then ? then.next.status : state.status, ...(then ? { then } : {}) };
}

function step(state: RequestState, outcome: StepOutcome, parts: Omit<Step, 'kind' | 'outcome' | 'next'>): Step {
  const { change } = parts;
  let next = state;
  if (change?.kind === 'status') {
    next = { ...state, status: change.to, decidedAt: change.decidedAt, statusReason: change.statusReason, ...(change.executionStatus ? { executionStatus: change.executionStatus } : {}) };
  } else if (change?.kind === 'claim') {
    next = { ...state, executionStatus: 'running', executionInstanceId: change.instanceId };
  } else if (change) {
    next = { ...state, executionStatus: change.to };
  }
  return { kind: 'step', outcome, next, ...parts };
}

/** One approver's verdict. Four-eyes, the deadline, one vote per approver and the quorum live here only. */
function decide(state: RequestState, event: Extract<MachineEvent, { type: 'decide' }>, settings: MachineSettings): Transition {
  const { now } = event;
  if (state.requesterId === event.approverId && !settings.allowSelfApproval) return refuse(state, 'self_approval', 'you may not decide your own request');
  if (state.status !== 'pending') return refuse(state, 'not_pending', `request ${state.shortId} is already ${state.status}`);
  if (state.expiresAt <= now) {
    const expired = expire(state, { type: 'expire', now });
    return refuse(state, 'not_pending', `request ${state.shortId} has expired`, expired.kind === 'step' ? expired : undefined);
  }
  if (event.decisions.some((d) => d.approverId === event.approverId)) return refuse(state, 'already_decided', `you have already decided request ${state.shortId}`);

  const decision: NewDecision = { requestId: state.id, approverId: event.approverId, verdict: event.verdict, reason: event.reason, now, ...(event.grant ? { grant: event.grant } : {}) };
  const approvals = event.decisions.filter((d) => d.verdict === 'approve' && d.counts).length + (event.verdict === 'approve' && event.approverCounts !== false ? 1 : 0);
  const resolvedTo = event.verdict === 'reject' ? 'rejected' : approvals >= state.requiredApprovals ? 'approved' : null;
  const change: StateChange | null = resolvedTo
    ? {
        kind: 'status',
        from: 'pending',
        to: resolvedTo,
        decidedAt: now,
        statusReason: event.reason,
        ...(resolvedTo === 'approved' ? { executionStatus: state.mode === 'decision' ? ('none' as const) : ('pending' as const) } : {}),
      }
    : null;
  return step(state, resolvedTo ?? 'counted', {
    change,
    decision,
    audit: [
      {
        actor: event.approverId,
        action: resolvedTo ? `approval.${resolvedTo}` : 'approval.decision',
        tool: state.tool,
        requestId: state.id,
        status: resolvedTo ?? 'pending',
        durationMs: now - state.requestedAt,
        details: { verdict: event.verdict, reason: event.reason, approvals: event.verdict === 'approve' ? approvals : undefined, required: state.requiredApprovals },
        httpRequestId: event.httpRequestId,
      },
    ],
    publish: resolvedTo ? 'approval.resolved' : 'approval.updated',
  });
}

function expire(state: RequestState, event: Extract<MachineEvent, { type: 'expire' }>): Transition {
  if (state.status !== 'pending') return refuse(state, 'not_pending', `request ${state.shortId} is already ${state.status}`);
  if (!event.force && state.expiresAt > event.now) return refuse(state, 'not_due', `request ${state.shortId} is not due until ${new Date(state.expiresAt).toISOString()}`);
  const reason = event.reason ?? EXPIRY_REASON;
  return step(state, 'expired', {
    change: { kind: 'status', from: 'pending', to: 'expired', decidedAt: event.now, statusReason: reason },
    decision: null,
    audit: [{ actor: 'system', action: 'approval.expired', tool: state.tool, requestId: state.id, status: 'expired', durationMs: event.now - state.requestedAt, details: { reason } }],
    publish: 'approval.resolved',
  });
}

function cancel(state: RequestState, event: Extract<MachineEvent, { type: 'cancel' }>): Transition {
  if (state.status !== 'pending') return refuse(state, 'not_pending', `request ${state.shortId} is already ${state.status}`);
  return step(state, 'cancelled', {
    change: { kind: 'status', from: 'pending', to: 'cancelled', decidedAt: event.now, statusReason: event.reason },
    decision: null,
    audit: [{ actor: event.actor, action: 'approval.cancelled', tool: state.tool, requestId: state.id, status: 'cancelled', details: { reason: event.reason }, httpRequestId: event.httpRequestId }],
    publish: 'approval.resolved',
  });
}

/**
 * The point of no return. A request whose requester lost the power that made it (disabled, or
 * its token revoked) is refused here, in the claim's transaction: it never runs.
 */
function claim(state: RequestState, event: Extract<MachineEvent, { type: 'claim' }>): Transition {
  if (state.status !== 'approved' || state.executionStatus !== 'pending') return refuse(state, 'execution_taken', `request ${state.shortId} is already running or has run`);
  const base = { tool: state.tool, requestId: state.id, httpRequestId: event.httpRequestId };
  if (event.withdrawn) {
    const error = `${REFUSED_PREFIX}${event.withdrawn}`;
    return step(state, 'refused', {
      change: { kind: 'end', from: 'pending', to: 'failed', finishedAt: event.now, error },
      decision: null,
      audit: [{ actor: 'system', action: 'execution.refused', ...base, status: 'failed', details: { error } }],
      publish: 'approval.executed',
    });
  }
  return step(state, 'claimed', {
    change: { kind: 'claim', from: 'pending', to: 'running', instanceId: event.instanceId, startedAt: event.now },
    decision: null,
    audit: [{ actor: 'system', action: 'execution.started', ...base, status: 'running' }],
    publish: null,
  });
}

function finish(state: RequestState, event: Extract<MachineEvent, { type: 'finish' }>): Transition {
  if (state.executionStatus !== 'running') return refuse(state, 'execution_taken', `request ${state.shortId} is not running (its execution is ${state.executionStatus})`);
  return step(state, event.status, {
    change: { kind: 'finish', from: 'running', to: event.status, finishedAt: event.now, result: event.result, error: event.error },
    decision: null,
    audit: [
      {
        actor: 'system',
        action: `execution.${event.status}`,
        tool: state.tool,
        requestId: state.id,
        status: event.status,
        durationMs: event.now - event.startedAt,
        details: event.error ? { error: event.error } : {},
        httpRequestId: event.httpRequestId,
      },
    ],
    publish: 'approval.executed',
  });
}

/**
 * An execution that will not finish normally. `abandoned`: its caller went away before the tool
 * ran (from `pending`, or from `running` when it was claimed for that caller but not started).
 * `interrupted`: it was running when its gateway died, so it may or may not have run.
 */
function endExecution(state: RequestState, outcome: 'abandoned' | 'interrupted', to: 'failed' | 'interrupted', error: string, now: number): Transition {
  const from = state.executionStatus;
  const allowed = outcome === 'interrupted' ? from === 'running' : from === 'pending' || from === 'running';
  if (state.status !== 'approved' || !allowed || (from !== 'pending' && from !== 'running')) {
    return refuse(state, 'execution_taken', `request ${state.shortId} cannot be ${outcome} (its execution is ${from})`);
  }
  return step(state, outcome, {
    change: { kind: 'end', from, to, finishedAt: now, error },
    decision: null,
    audit: [{ actor: 'system', action: to === 'failed' ? 'execution.failed' : 'execution.interrupted', tool: state.tool, requestId: state.id, status: to, details: { error } }],
    publish: 'approval.executed',
  });
}

// ---- a new request ------------------------------------------------------------------------

export interface OpenSettings {
  approvalTimeoutMs: number;
  quorum: { HIGH: number; CRITICAL: number };
}

export interface OpenEvent {
  id: string;
  tool: string;
  /** The arguments as stored (JSON text), and as the audit event shows them. */
  argumentsJson: string;
  auditArguments: unknown;
  requester: { id: string; role: string; tokenId: number | null };
  sensitivity: Sensitivity;
  mode: ApprovalMode;
  /** The instance that holds a `wait` caller (recovery cancels its requests when it dies). */
  instanceId: string;
  /** The binding: SHA-256 of the canonical call, and the policy version it hashes in. */
  callHash: string;
  policyVersion: string;
  now: number;
  /** Approved at once, with this status reason: it needs no approval, or a standing approval allows it. */
  autoApproved?: string;
  /** The standing approval that allows it (with `autoApproved`). */
  grantId?: string | undefined;
  httpRequestId?: string | undefined;
}

/** A request as first stored. */
export interface NewRequest extends RequestState {
  arguments: string;
  requesterRole: string;
  tokenId: number | null;
  sensitivity: Sensitivity;
  instanceId: string | null;
  executionStartedAt: number | null;
  executionFinishedAt: number | null;
  executionError: string | null;
  result: string | null;
  callHash: string | null;
  policyVersion: string | null;
  grantId: string | null;
}

export function requiredApprovalsFor(sensitivity: Sensitivity, quorum: OpenSettings['quorum']): number {
  return sensitivity === 'HIGH' || sensitivity === 'CRITICAL' ? quorum[sensitivity] : 0;
}

/** none → pending (or → approved, for a request that needs no approval), with its audit event. */
export function open(event: OpenEvent, settings: OpenSettings): { record: NewRequest; audit: CoreAuditEntry[]; publish: ApprovalEventType | null } {
  const auto = event.autoApproved !== undefined;
  const record: NewRequest = {
    id: event.id,
    shortId: event.id.replace(/-/g, '').slice(0, 8),
    tool: event.tool,
    arguments: event.argumentsJson,
    requesterId: event.requester.id,
    requesterRole: event.requester.role,
    tokenId: event.requester.tokenId,
    sensitivity: event.sensitivity,
    mode: event.mode,
    status: auto ? 'approved' : 'pending',
    statusReason: auto ? event.autoApproved! : null,
    requiredApprovals: requiredApprovalsFor(event.sensitivity, settings.quorum),
    instanceId: event.mode === 'wait' ? event.instanceId : null,
    requestedAt: event.now,
    expiresAt: event.now + settings.approvalTimeoutMs,
    decidedAt: auto ? event.now : null,
    executionStatus: 'none',
    executionInstanceId: null,
    executionStartedAt: null,
    executionFinishedAt: null,
    executionError: null,
    result: null,
    callHash: event.callHash,
    policyVersion: event.policyVersion,
    grantId: event.grantId ?? null,
  };
  return {
    record,
    audit: [
      {
        actor: event.requester.id,
        action: auto ? (event.grantId ? 'approval.granted' : 'approval.auto_approved') : 'approval.requested',
        tool: event.tool,
        requestId: event.id,
        status: record.status,
        details: {
          arguments: event.auditArguments,
          sensitivity: event.sensitivity,
          mode: event.mode,
          requiredApprovals: record.requiredApprovals,
          callHash: event.callHash,
          policyVersion: event.policyVersion,
          ...(event.grantId ? { grant: event.grantId } : {}),
        },
        httpRequestId: event.httpRequestId,
      },
    ],
    publish: auto ? null : 'approval.requested',
  };
}
