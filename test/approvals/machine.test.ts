import { describe, expect, it } from 'vitest';
import { EXECUTION_STATUSES, type ApprovalStatus, type ExecutionStatus } from '../../src/approvals/approval.js';
import {
  FEED_EVENT_OF_ACTION,
  feedEventOf,
  open,
  REFUSED_PREFIX,
  transition,
  type CastDecision,
  type MachineEvent,
  type MachineSettings,
  type RequestState,
  type Step,
  type StepOutcome,
  type Transition,
} from '../../src/approvals/machine.js';

/** A clock the tests move by hand, in milliseconds. */
function fakeClock(start = Date.UTC(2026, 10, 23, 12)) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

const TIMEOUT = 300_000;
const settings: MachineSettings = { allowSelfApproval: false };

function request(clock: { now(): number }, overrides: Partial<RequestState> = {}): RequestState {
  const { record } = open(
    {
      id: '0123abcd-0000-4000-8000-000000000001',
      tool: 'write_file',
      argumentsJson: '{"path":"x"}',
      auditArguments: { path: 'x' },
      requester: { id: 'dev_user', role: 'developer', tokenId: 7 },
      sensitivity: 'HIGH',
      mode: 'wait',
      instanceId: 'instance-a',
      callHash: 'c'.repeat(64),
      policyVersion: 'v1',
      now: clock.now(),
    },
    { approvalTimeoutMs: TIMEOUT, quorum: { HIGH: 1, CRITICAL: 2 } },
  );
  return { ...record, ...overrides };
}

function approve(approverId: string, now: number, decisions: CastDecision[] = []): MachineEvent {
  return { type: 'decide', approverId, verdict: 'approve', reason: `ok by ${approverId}`, now, decisions };
}

function asStep(t: Transition): Step {
  if (t.kind !== 'step') throw new Error(`expected a step, got a refusal: ${t.reason} (${t.message})`);
  return t;
}

describe('the request machine', () => {
  it('opens a HIGH request pending until the timeout, with the quorum of its sensitivity, and announces it', () => {
    const clock = fakeClock();
    const made = open(
      {
        id: '0123abcd-ef01-4000-8000-000000000001',
        tool: 'execute_bash',
        argumentsJson: '{}',
        auditArguments: {},
        requester: { id: 'dev_user', role: 'developer', tokenId: null },
        sensitivity: 'CRITICAL',
        mode: 'async',
        instanceId: 'instance-a',
        callHash: 'c'.repeat(64),
        policyVersion: 'v1',
        now: clock.now(),
      },
      { approvalTimeoutMs: TIMEOUT, quorum: { HIGH: 1, CRITICAL: 2 } },
    );
    expect(made.record).toMatchObject({
      shortId: '0123abcd',
      status: 'pending',
      requiredApprovals: 2,
      expiresAt: clock.now() + TIMEOUT,
      decidedAt: null,
      executionStatus: 'none',
      instanceId: null,
    });
    expect(made.audit.map((a) => a.action)).toEqual(['approval.requested']);
    expect(made.publish).toBe('approval.requested');
  });

  it('opens a request that needs no approval already approved, and tells no approver', () => {
    const clock = fakeClock();
    const made = open(
      {
        id: '0123abcd-ef01-4000-8000-000000000002',
        tool: 'list_files',
        argumentsJson: '{}',
        auditArguments: {},
        requester: { id: 'dev_user', role: 'developer', tokenId: 1 },
        sensitivity: 'LOW',
        mode: 'decision',
        instanceId: 'instance-a',
        callHash: 'c'.repeat(64),
        policyVersion: 'v1',
        now: clock.now(),
        autoApproved: 'LOW needs no approval',
      },
      { approvalTimeoutMs: TIMEOUT, quorum: { HIGH: 1, CRITICAL: 2 } },
    );
    expect(made.record).toMatchObject({ status: 'approved', statusReason: 'LOW needs no approval', decidedAt: clock.now(), requiredApprovals: 0 });
    expect(made.audit.map((a) => a.action)).toEqual(['approval.auto_approved']);
    expect(made.publish).toBeNull();
  });

  it('approves at a quorum of 1, compare-and-set from pending, and readies the run of a wait request', () => {
    const clock = fakeClock();
    const state = request(clock);
    clock.advance(1500);
    const s = asStep(transition(state, approve('admin_user', clock.now()), settings));
    expect(s.outcome).toBe('approved');
    expect(s.change).toEqual({ kind: 'status', from: 'pending', to: 'approved', decidedAt: clock.now(), statusReason: 'ok by admin_user', executionStatus: 'pending' });
    expect(s.decision).toEqual({ requestId: state.id, approverId: 'admin_user', verdict: 'approve', reason: 'ok by admin_user', now: clock.now() });
    expect(s.next).toMatchObject({ status: 'approved', executionStatus: 'pending', decidedAt: clock.now() });
    expect(s.audit).toEqual([
      expect.objectContaining({ actor: 'admin_user', action: 'approval.approved', status: 'approved', durationMs: 1500, details: expect.objectContaining({ approvals: 1, required: 1 }) }),
    ]);
    expect(s.publish).toBe('approval.resolved');
  });

  it('approves a decision-only request with no execution to run', () => {
    const clock = fakeClock();
    const s = asStep(transition(request(clock, { mode: 'decision' }), approve('admin_user', clock.now()), settings));
    expect(s.next).toMatchObject({ status: 'approved', executionStatus: 'none' });
  });

  it('keeps a quorum-2 request pending after one approval, records the vote and tells approvers', () => {
    const clock = fakeClock();
    const state = request(clock, { requiredApprovals: 2 });
    const s = asStep(transition(state, approve('admin_user', clock.now()), settings));
    expect(s.outcome).toBe('counted');
    expect(s.change).toBeNull();
    expect(s.decision?.approverId).toBe('admin_user');
    expect(s.next.status).toBe('pending');
    expect(s.audit).toEqual([expect.objectContaining({ action: 'approval.decision', status: 'pending', details: expect.objectContaining({ approvals: 1, required: 2 }) })]);
    expect(s.publish).toBe('approval.updated');
  });

  it('approves a quorum-2 request on the second distinct approval', () => {
    const clock = fakeClock();
    const state = request(clock, { requiredApprovals: 2 });
    const first: CastDecision = { approverId: 'admin_user', verdict: 'approve', counts: true };
    const s = asStep(transition(state, approve('second_admin', clock.now(), [first]), settings));
    expect(s.outcome).toBe('approved');
    expect(s.audit[0]!.details).toMatchObject({ approvals: 2, required: 2 });
  });

  it('does not count a withdrawn approval (its approver was disabled or demoted) toward the quorum', () => {
    const clock = fakeClock();
    const state = request(clock, { requiredApprovals: 2 });
    const withdrawn: CastDecision = { approverId: 'gone_admin', verdict: 'approve', counts: false };
    const s = asStep(transition(state, approve('admin_user', clock.now(), [withdrawn]), settings));
    expect(s.outcome).toBe('counted');
    expect(s.audit[0]!.details).toMatchObject({ approvals: 1 });
  });

  it('does not count the vote of an approver who no longer counts', () => {
    const clock = fakeClock();
    const s = asStep(transition(request(clock), { ...approve('admin_user', clock.now()), approverCounts: false } as MachineEvent, settings));
    expect(s.outcome).toBe('counted');
    expect(s.decision).not.toBeNull();
  });

  it('rejects on any one reject, whatever the quorum', () => {
    const clock = fakeClock();
    const state = request(clock, { requiredApprovals: 2 });
    const first: CastDecision = { approverId: 'admin_user', verdict: 'approve', counts: true };
    const s = asStep(transition(state, { type: 'decide', approverId: 'second_admin', verdict: 'reject', reason: 'no', now: clock.now(), decisions: [first] }, settings));
    expect(s.outcome).toBe('rejected');
    expect(s.change).toMatchObject({ from: 'pending', to: 'rejected', statusReason: 'no' });
    expect(s.change).not.toHaveProperty('executionStatus');
    expect(s.audit[0]).toMatchObject({ action: 'approval.rejected', details: { verdict: 'reject', approvals: undefined } });
  });

  it('refuses a second decision by the same approver with already_decided', () => {
    const clock = fakeClock();
    const state = request(clock, { requiredApprovals: 2 });
    const mine: CastDecision = { approverId: 'admin_user', verdict: 'approve', counts: true };
    const t = transition(state, approve('admin_user', clock.now(), [mine]), settings);
    expect(t).toMatchObject({ kind: 'refused', reason: 'already_decided', message: 'you have already decided request 0123abcd', status: 'pending' });
  });

  it('refuses a decision on a decided request with not_pending, saying where it is', () => {
    const clock = fakeClock();
    for (const status of ['approved', 'rejected', 'expired', 'cancelled'] as const) {
      const t = transition(request(clock, { status }), approve('admin_user', clock.now()), settings);
      expect(t).toEqual({ kind: 'refused', reason: 'not_pending', message: `request 0123abcd is already ${status}`, status });
    }
  });

  it('refuses self-approval (four eyes) before anything else, and allows it when configured', () => {
    const clock = fakeClock();
    expect(transition(request(clock), approve('dev_user', clock.now()), settings)).toMatchObject({ kind: 'refused', reason: 'self_approval' });
    expect(transition(request(clock, { status: 'approved' }), approve('dev_user', clock.now()), settings)).toMatchObject({ reason: 'self_approval' });
    expect(asStep(transition(request(clock), approve('dev_user', clock.now()), { allowSelfApproval: true })).outcome).toBe('approved');
  });

  it('expires a request decided at or after its deadline and refuses the decision as not_pending', () => {
    const clock = fakeClock();
    const state = request(clock);
    clock.advance(TIMEOUT - 1);
    expect(asStep(transition(state, approve('admin_user', clock.now()), settings)).outcome).toBe('approved');
    clock.advance(1);
    const t = transition(state, approve('admin_user', clock.now()), settings);
    expect(t).toMatchObject({ kind: 'refused', reason: 'not_pending', message: 'request 0123abcd has expired', status: 'expired' });
    const then = t.kind === 'refused' ? t.then : undefined;
    expect(then?.outcome).toBe('expired');
    expect(then?.decision).toBeNull();
    expect(then?.audit).toEqual([expect.objectContaining({ actor: 'system', action: 'approval.expired', durationMs: TIMEOUT, details: { reason: 'no decision before the timeout' } })]);
  });

  it('expires only once the deadline has come, unless forced', () => {
    const clock = fakeClock();
    const state = request(clock);
    clock.advance(TIMEOUT - 1);
    expect(transition(state, { type: 'expire', now: clock.now() }, settings)).toMatchObject({ kind: 'refused', reason: 'not_due' });
    const forced = asStep(transition(state, { type: 'expire', now: clock.now(), force: true, reason: 'approval workflow disabled' }, settings));
    expect(forced.change).toMatchObject({ to: 'expired', statusReason: 'approval workflow disabled' });
    clock.advance(1);
    const due = asStep(transition(state, { type: 'expire', now: clock.now() }, settings));
    expect(due.change).toEqual({ kind: 'status', from: 'pending', to: 'expired', decidedAt: clock.now(), statusReason: 'no decision before the timeout' });
    expect(due.publish).toBe('approval.resolved');
    expect(transition(due.next, { type: 'expire', now: clock.now() }, settings)).toMatchObject({ kind: 'refused', reason: 'not_pending', status: 'expired' });
  });

  it('cancels a pending request only', () => {
    const clock = fakeClock();
    const s = asStep(transition(request(clock), { type: 'cancel', actor: 'dev_user', reason: 'caller disconnected', now: clock.now(), httpRequestId: 'r1' }, settings));
    expect(s.next).toMatchObject({ status: 'cancelled', statusReason: 'caller disconnected' });
    expect(s.audit).toEqual([{ actor: 'dev_user', action: 'approval.cancelled', tool: 'write_file', requestId: s.next.id, status: 'cancelled', details: { reason: 'caller disconnected' }, httpRequestId: 'r1' }]);
    expect(transition(s.next, { type: 'cancel', actor: 'dev_user', reason: 'again', now: clock.now() }, settings)).toMatchObject({ kind: 'refused', reason: 'not_pending', status: 'cancelled' });
  });
});

describe('the execution machine', () => {
  const approved = (clock: { now(): number }, executionStatus: ExecutionStatus = 'pending') => request(clock, { status: 'approved', decidedAt: clock.now(), executionStatus });

  it('claims an approved run for one instance; a second claim is refused', () => {
    const clock = fakeClock();
    const s = asStep(transition(approved(clock), { type: 'claim', instanceId: 'instance-b', now: clock.now(), withdrawn: null }, settings));
    expect(s.outcome).toBe('claimed');
    expect(s.change).toEqual({ kind: 'claim', from: 'pending', to: 'running', instanceId: 'instance-b', startedAt: clock.now() });
    expect(s.next).toMatchObject({ executionStatus: 'running', executionInstanceId: 'instance-b' });
    expect(s.audit.map((a) => a.action)).toEqual(['execution.started']);
    expect(s.publish).toBeNull();
    expect(transition(s.next, { type: 'claim', instanceId: 'instance-a', now: clock.now(), withdrawn: null }, settings)).toMatchObject({
      kind: 'refused',
      reason: 'execution_taken',
      message: 'request 0123abcd is already running or has run',
    });
  });

  it('refuses to run a request whose requester lost power: failed with a "refused:" error, never running', () => {
    const clock = fakeClock();
    const s = asStep(transition(approved(clock), { type: 'claim', instanceId: 'instance-a', now: clock.now(), withdrawn: 'token revoked' }, settings));
    expect(s.outcome).toBe('refused');
    expect(s.change).toEqual({ kind: 'end', from: 'pending', to: 'failed', finishedAt: clock.now(), error: `${REFUSED_PREFIX}token revoked` });
    expect(s.audit.map((a) => a.action)).toEqual(['execution.refused']);
    expect(s.publish).toBe('approval.executed');
  });

  it('never claims a request that is not approved or has nothing to run', () => {
    const clock = fakeClock();
    for (const state of [request(clock), request(clock, { status: 'rejected' }), approved(clock, 'none'), approved(clock, 'succeeded')]) {
      expect(transition(state, { type: 'claim', instanceId: 'instance-a', now: clock.now(), withdrawn: null }, settings)).toMatchObject({ kind: 'refused', reason: 'execution_taken' });
    }
  });

  it('records a finished run with its duration, once', () => {
    const clock = fakeClock();
    const started = clock.now();
    clock.advance(42);
    const s = asStep(transition(approved(clock, 'running'), { type: 'finish', status: 'succeeded', result: '{"content":[]}', error: null, startedAt: started, now: clock.now() }, settings));
    expect(s.change).toEqual({ kind: 'finish', from: 'running', to: 'succeeded', finishedAt: clock.now(), result: '{"content":[]}', error: null });
    expect(s.audit).toEqual([expect.objectContaining({ action: 'execution.succeeded', status: 'succeeded', durationMs: 42, details: {} })]);
    expect(s.publish).toBe('approval.executed');
    expect(transition(s.next, { type: 'finish', status: 'failed', result: null, error: 'x', startedAt: started, now: clock.now() }, settings)).toMatchObject({ kind: 'refused', reason: 'execution_taken' });
    const failed = asStep(transition(approved(clock, 'running'), { type: 'finish', status: 'failed', result: null, error: 'boom', startedAt: started, now: clock.now() }, settings));
    expect(failed.audit[0]).toMatchObject({ action: 'execution.failed', details: { error: 'boom' } });
  });

  it('abandons a run whose caller went away, from pending or from a claim that never started', () => {
    const clock = fakeClock();
    for (const from of ['pending', 'running'] as const) {
      const s = asStep(transition(approved(clock, from), { type: 'abandon', reason: 'the caller went away before the tool ran', now: clock.now() }, settings));
      expect(s.change).toEqual({ kind: 'end', from, to: 'failed', finishedAt: clock.now(), error: 'the caller went away before the tool ran' });
      expect(s.audit.map((a) => a.action)).toEqual(['execution.failed']);
    }
    expect(transition(approved(clock, 'succeeded'), { type: 'abandon', reason: 'x', now: clock.now() }, settings)).toMatchObject({ kind: 'refused' });
  });

  it('interrupts only a running execution (its gateway died mid-run)', () => {
    const clock = fakeClock();
    const s = asStep(transition(approved(clock, 'running'), { type: 'interrupt', reason: 'gateway restarted while the tool was running', now: clock.now() }, settings));
    expect(s.next.executionStatus).toBe('interrupted');
    expect(s.audit.map((a) => a.action)).toEqual(['execution.interrupted']);
    expect(transition(approved(clock, 'pending'), { type: 'interrupt', reason: 'x', now: clock.now() }, settings)).toMatchObject({ kind: 'refused' });
  });
});

describe('every transition from every state', () => {
  const STATUSES: ApprovalStatus[] = ['pending', 'approved', 'rejected', 'expired', 'cancelled'];
  const LEGAL_STATUS = new Set(['pending>approved', 'pending>rejected', 'pending>expired', 'pending>cancelled']);
  const LEGAL_EXECUTION = new Set(['none>pending', 'pending>running', 'pending>failed', 'running>succeeded', 'running>failed', 'running>interrupted']);

  function events(now: number): MachineEvent[] {
    return [
      approve('admin_user', now),
      { type: 'decide', approverId: 'admin_user', verdict: 'reject', reason: 'no', now, decisions: [] },
      { type: 'expire', now },
      { type: 'expire', now, force: true },
      { type: 'cancel', actor: 'dev_user', reason: 'gone', now },
      { type: 'claim', instanceId: 'i', now, withdrawn: null },
      { type: 'claim', instanceId: 'i', now, withdrawn: 'requester disabled' },
      { type: 'finish', status: 'succeeded', result: null, error: null, startedAt: now, now },
      { type: 'finish', status: 'failed', result: null, error: 'e', startedAt: now, now },
      { type: 'abandon', reason: 'gone', now },
      { type: 'interrupt', reason: 'died', now },
      { type: 'unbound', expected: 'a'.repeat(64), actual: 'b'.repeat(64), now },
    ];
  }

  it('moves every reachable state only along the drawn edges, each a compare-and-set from the state it saw, and refuses the rest', () => {
    const clock = fakeClock();
    let steps = 0;
    let refusals = 0;
    for (const status of STATUSES) {
      // Only an approved request has an execution; every other status keeps it at `none`.
      for (const executionStatus of status === 'approved' ? EXECUTION_STATUSES : (['none'] as const)) {
        for (const overdue of [false, true]) {
          const state = request(clock, { status, executionStatus, expiresAt: overdue ? clock.now() : clock.now() + TIMEOUT });
          for (const event of events(clock.now())) {
            const t = transition(state, event, settings);
            const s = t.kind === 'step' ? t : t.then;
            if (t.kind === 'refused') {
              refusals++;
              expect(t.message).not.toBe('');
            }
            if (!s) continue;
            steps++;
            if (s.next.status !== status) expect(LEGAL_STATUS.has(`${status}>${s.next.status}`), `${status} → ${s.next.status} on ${event.type}`).toBe(true);
            if (s.next.executionStatus !== executionStatus) {
              expect(LEGAL_EXECUTION.has(`${executionStatus}>${s.next.executionStatus}`), `${executionStatus} → ${s.next.executionStatus} on ${event.type}`).toBe(true);
            }
            if (s.change?.kind === 'status') expect(status).toBe(s.change.from);
            else if (s.change) expect(executionStatus).toBe(s.change.from);
            expect(s.audit.length).toBe(1);
          }
        }
      }
    }
    expect(steps).toBeGreaterThan(0);
    expect(refusals).toBeGreaterThan(steps);
  });
});

describe('the change feed vocabulary', () => {
  /** One step of every outcome the machine has, as a gateway would commit them. */
  function everyOutcome(): Step[] {
    const clock = fakeClock();
    const now = clock.now();
    const pending = request(clock);
    const approved = request(clock, { status: 'approved', executionStatus: 'pending' });
    const running = request(clock, { status: 'approved', executionStatus: 'running' });
    const expiredDecision = transition(request(clock, { expiresAt: now }), approve('admin_user', now), settings);
    return [
      asStep(transition(pending, approve('admin_user', now), settings)),
      asStep(transition(request(clock, { requiredApprovals: 2 }), approve('admin_user', now), settings)),
      asStep(transition(pending, { type: 'decide', approverId: 'admin_user', verdict: 'reject', reason: 'no', now, decisions: [] }, settings)),
      asStep(transition(pending, { type: 'expire', now, force: true }, settings)),
      ...(expiredDecision.kind === 'refused' && expiredDecision.then ? [expiredDecision.then] : []),
      asStep(transition(pending, { type: 'cancel', actor: 'dev_user', reason: 'gone', now }, settings)),
      asStep(transition(approved, { type: 'claim', instanceId: 'i', now, withdrawn: null }, settings)),
      asStep(transition(approved, { type: 'claim', instanceId: 'i', now, withdrawn: 'token revoked' }, settings)),
      asStep(transition(running, { type: 'finish', status: 'succeeded', result: null, error: null, startedAt: now, now }, settings)),
      asStep(transition(running, { type: 'finish', status: 'failed', result: null, error: 'e', startedAt: now, now }, settings)),
      asStep(transition(approved, { type: 'abandon', reason: 'gone', now }, settings)),
      asStep(transition(running, { type: 'interrupt', reason: 'died', now }, settings)),
    ];
  }

  it('covers every outcome of the machine', () => {
    const all: StepOutcome[] = ['approved', 'rejected', 'counted', 'expired', 'cancelled', 'claimed', 'refused', 'succeeded', 'failed', 'abandoned', 'interrupted'];
    expect(new Set(everyOutcome().map((s) => s.outcome))).toEqual(new Set(all));
  });

  it('tells other processes, through each audit action written, exactly what this process publishes on its own bus', () => {
    for (const s of everyOutcome()) {
      const action = s.audit.at(-1)!.action;
      expect(feedEventOf(action), `${s.outcome} writes ${action}`).toBe(s.publish);
    }
    const made = open(
      { id: 'a', tool: 't', argumentsJson: '{}', auditArguments: {}, requester: { id: 'u', role: 'r', tokenId: null }, sensitivity: 'HIGH', mode: 'wait', instanceId: 'i', callHash: 'h', policyVersion: 'v', now: 0 },
      { approvalTimeoutMs: 1, quorum: { HIGH: 1, CRITICAL: 1 } },
    );
    expect(feedEventOf(made.audit[0]!.action)).toBe(made.publish);
  });

  it('maps the actions the polling fallback has always woken callers on, and nothing else', () => {
    const fed = Object.fromEntries(Object.entries(FEED_EVENT_OF_ACTION).filter(([, event]) => event !== null));
    expect(fed).toEqual({
      'approval.requested': 'approval.requested',
      'approval.decision': 'approval.updated',
      'approval.approved': 'approval.resolved',
      'approval.rejected': 'approval.resolved',
      'approval.expired': 'approval.resolved',
      'approval.cancelled': 'approval.resolved',
      'execution.succeeded': 'approval.executed',
      'execution.failed': 'approval.executed',
      'execution.interrupted': 'approval.executed',
      'execution.refused': 'approval.executed',
    });
    expect(feedEventOf('user.disabled')).toBeNull();
    expect(feedEventOf('toString')).toBeNull();
  });
});
