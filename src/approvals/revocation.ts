import type { AuditLog } from '../audit/audit.service.js';
import type { Transaction } from '../core/persistence.js';
import type { IdentityReads } from '../auth/identity-store.js';
import type { ApprovalRecord } from './approval-store.js';

/** Status reasons of requests cancelled because the power that made them was withdrawn. */
export const REQUESTER_DISABLED = 'requester disabled';
export const TOKEN_REVOKED = 'token revoked';

export { isRefusal, REFUSED_PREFIX } from './machine.js';

/**
 * Why a request may no longer run, or null when its requester still holds the power that made
 * it: the user must still exist and be active, and the token that made it must still be live.
 * Anonymous requests (RBAC off, no token) have no identity to withdraw.
 */
export async function withdrawnPower(identity: IdentityReads, row: Pick<ApprovalRecord, 'requesterId' | 'requesterRole' | 'tokenId'>): Promise<string | null> {
  if (row.tokenId === null && row.requesterRole === 'anonymous') return null;
  const standing = await identity.requesterStanding(row.requesterId, row.tokenId);
  if (standing.userActive !== true) return REQUESTER_DISABLED;
  if (standing.tokenLive === false) return TOKEN_REVOKED;
  return null;
}

/**
 * pending → cancelled in `tx`, with its `approval.cancelled` audit event; undefined when the
 * request was no longer pending.
 */
export async function cancelInTransaction(
  tx: Transaction,
  deps: { audit: AuditLog; clock: { now(): number } },
  row: Pick<ApprovalRecord, 'id' | 'tool'>,
  actor: string,
  reason: string,
  httpRequestId?: string,
): Promise<ApprovalRecord | undefined> {
  const cancelled = await tx.approvals.transition(row.id, 'pending', 'cancelled', { decidedAt: deps.clock.now(), statusReason: reason });
  if (!cancelled) return undefined;
  await deps.audit.append(tx, { actor, action: 'approval.cancelled', tool: row.tool, requestId: row.id, status: 'cancelled', details: { reason }, httpRequestId });
  return cancelled;
}

/**
 * Revokes, in `tx`, every standing approval made for `userId` or approved by them (a disabled user
 * takes their grants with them, on either side), each with its `grant.revoked` audit event.
 */
export async function revokeGrantsOf(tx: Transaction, deps: { audit: AuditLog; clock: { now(): number } }, userId: string, actor: string, reason: string): Promise<number> {
  const revoked = await tx.approvals.revokeGrantsOf(userId, actor, reason, deps.clock.now());
  for (const g of revoked) {
    await deps.audit.append(tx, { actor, action: 'grant.revoked', tool: g.tool, requestId: g.requestId, status: 'revoked', details: { grant: g.id, reason, user: userId } });
  }
  return revoked.length;
}
