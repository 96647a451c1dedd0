import type { AuditLog } from '../audit/audit.service.js';
import type { Store } from '../db/store.js';
import type { ApprovalRow } from './approval.js';

/** Status reasons of requests cancelled because the power that made them was withdrawn. */
export const REQUESTER_DISABLED = 'requester disabled';
export const TOKEN_REVOKED = 'token revoked';

export { isRefusal, REFUSED_PREFIX } from './machine.js';

/**
 * Why a request may no longer run, or null when its requester still holds the power that made
 * it: the user must still exist and be active, and the token that made it must still be live.
 * Anonymous requests (RBAC off, no token) have no identity to withdraw.
 */
export function withdrawnPower(store: Store, row: Pick<ApprovalRow, 'requesterId' | 'requesterRole' | 'tokenId'>): string | null {
  if (row.tokenId === null && row.requesterRole === 'anonymous') return null;
  const standing = store.requesterStanding(row.requesterId, row.tokenId);
  if (standing.userActive !== true) return REQUESTER_DISABLED;
  if (standing.tokenLive === false) return TOKEN_REVOKED;
  return null;
}

/**
 * pending → cancelled, with its `approval.cancelled` audit event. Call inside `store.transaction`;
 * false when the request was no longer pending.
 */
export function cancelInTransaction(
  deps: { store: Store; audit: AuditLog; clock: { now(): number } },
  row: Pick<ApprovalRow, 'id' | 'tool'>,
  actor: string,
  reason: string,
  httpRequestId?: string,
): boolean {
  if (!deps.store.transition(row.id, 'pending', 'cancelled', { decidedAt: deps.clock.now(), statusReason: reason })) return false;
  deps.audit.append({ actor, action: 'approval.cancelled', tool: row.tool, requestId: row.id, status: 'cancelled', details: { reason }, httpRequestId });
  return true;
}
