/**
 * The three read-then-write sequences that need more than a row's compare-and-set, as the core
 * runs them, each with a turn of the event loop between its read and its write so that every
 * other writer gets the chance to slip in. Run concurrently from several stores (and processes),
 * they hold only if the store serialises them.
 */
import { createAuditLog, type AuditLog } from '../../src/audit/audit.service.js';
import type { Persistence } from '../../src/core/persistence.js';
import { aRequest } from './records.js';

/** A millisecond away: long enough for a writer in another process to reach the same point. */
const aTurn = () => new Promise((resolve) => setTimeout(resolve, 1));

/** Reserves a pending slot under the caps and, if it got one, inserts the request. */
export function createWithinCaps(store: Persistence, id: string, requesterId: string, max: number, maxPerRequester?: number) {
  return store.withTransaction(async (tx) => {
    const slot = await tx.approvals.reservePendingSlot({ max, requesterId, maxPerRequester });
    await aTurn();
    if (slot === 'reserved') await tx.approvals.insertRequest(aRequest(id, { requesterId }));
    return slot;
  });
}

/** One approver's approval of a quorum request: lock it, vote, count, and approve it once the quorum is reached. */
export function approve(store: Persistence, requestId: string, approverId: string) {
  return store.withTransaction(async (tx) => {
    const row = await tx.approvals.lockForDecision(requestId);
    if (!row || row.status !== 'pending') return 'not_pending';
    const now = Date.now();
    if (!(await tx.approvals.insertDecision({ requestId, approverId, verdict: 'approve', reason: 'ok', now }))) return 'already_decided';
    await aTurn();
    if ((await tx.approvals.countApprovals(requestId)) < row.requiredApprovals) return 'counted';
    return (await tx.approvals.transition(requestId, 'pending', 'approved', { decidedAt: now, statusReason: 'ok' })) ? 'approved' : 'lost';
  });
}

/** Each writer's audit log in this process: its chains' heads live here, as in a gateway. */
const writers = new Map<string, AuditLog>();

/** Appends one event to `writer`'s chains (a writer per process, as gateways are), taking no lock; returns its seq. */
export function appendEvent(store: Persistence, writer: string) {
  let audit = writers.get(writer);
  if (!audit) writers.set(writer, (audit = createAuditLog({ clock: { now: () => Date.now() }, instanceId: `${writer}@${process.pid}` })));
  const log = audit;
  return store.withTransaction(async (tx) => {
    await aTurn();
    return (await log.append(tx, { actor: writer, action: 'test.appended' })).seq;
  });
}

/** Uses one call of a standing approval, as a covered tool call does: a conditional update, nothing read before it. */
export function useGrant(store: Persistence, grantId: string) {
  return store.withTransaction(async (tx) => {
    await aTurn();
    return (await tx.approvals.consumeGrant(grantId, Date.now())) ? 'used' : 'refused';
  });
}

export const scenarios = { createWithinCaps, approve, appendEvent, useGrant };
export type ScenarioName = keyof typeof scenarios;
