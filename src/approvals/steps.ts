import type { AuditLog } from '../audit/audit.service.js';
import type { Transaction } from '../core/persistence.js';
import type { ApprovalRecord, DecisionRecord } from './approval-store.js';
import { transition, type CastDecision, type MachineEvent, type MachineSettings, type Step, type Transition } from './machine.js';
import { withdrawnPower } from './revocation.js';

/*
 * The machine's steps, written through the persistence port: the one place where a Step becomes
 * a compare-and-set, a decision row and its audit events, all in the caller's transaction.
 */

/**
 * Writes a step in `tx`. Returns the request as it now is, or undefined when the compare-and-set
 * found it moved on (another process got there first): then nothing of the step is written.
 */
export async function commitStep(tx: Transaction, audit: AuditLog, record: ApprovalRecord, step: Step): Promise<ApprovalRecord | undefined> {
  const { change } = step;
  let next: ApprovalRecord | undefined = record;
  if (change?.kind === 'status') {
    const fields = { decidedAt: change.decidedAt, statusReason: change.statusReason, ...(change.executionStatus ? { executionStatus: change.executionStatus } : {}) };
    if (step.decision && !(await tx.approvals.insertDecision(step.decision))) return undefined;
    next = await tx.approvals.transition(record.id, change.from, change.to, fields);
    // Under lockForDecision nobody else can move it; if something did, roll the vote back too.
    if (!next && step.decision) throw new Error(`request ${record.id} changed under its decision lock`);
  } else if (change?.kind === 'claim') {
    next = await tx.approvals.claimExecution(record.id, change.instanceId, change.startedAt);
  } else if (change?.kind === 'finish') {
    next = await tx.approvals.finishExecution(record.id, { status: change.to, result: change.result, error: change.error, now: change.finishedAt });
  } else if (change?.kind === 'end') {
    next = await tx.approvals.endExecution(record.id, { from: change.from, to: change.to, error: change.error, now: change.finishedAt });
  } else if (step.decision && !(await tx.approvals.insertDecision(step.decision))) {
    return undefined;
  }
  if (!next) return undefined;
  for (const entry of step.audit) await audit.append(tx, entry);
  return next;
}

/** The decisions already on a request, as the machine counts them. */
export function castDecisions(decisions: readonly DecisionRecord[]): CastDecision[] {
  return decisions.map((d) => ({ approverId: d.approverId, verdict: d.verdict, counts: !d.withdrawn }));
}

/**
 * The claim of an approved request's run, with the requester's standing read in the same
 * transaction (a requester disabled or a token revoked since the approval turns it into a refusal).
 */
export async function claimTransition(
  tx: Transaction,
  record: ApprovalRecord,
  claim: { instanceId: string; now: number; httpRequestId?: string | undefined },
  settings: MachineSettings,
): Promise<Transition> {
  const withdrawn = record.status === 'approved' && record.executionStatus === 'pending' ? await withdrawnPower(tx.identity, record) : null;
  const event: MachineEvent = { type: 'claim', instanceId: claim.instanceId, now: claim.now, withdrawn, httpRequestId: claim.httpRequestId };
  return transition(record, event, settings);
}
