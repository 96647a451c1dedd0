/** Records and people for the store contract and its concurrency scenarios. */
import type { ApprovalRecord } from '../../src/approvals/approval.js';
import type { ApprovalGrant } from '../../src/approvals/grants.js';
import type { NewAuditRecord } from '../../src/audit/audit-store.js';
import type { Persistence } from '../../src/core/persistence.js';

export const T0 = 1_700_000_000_000;

export function aRequest(id: string, fields: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id,
    shortId: id.replace(/-/g, '').slice(0, 8),
    tool: 'write_file',
    arguments: '{"path":"a"}',
    requesterId: 'dev_user',
    requesterRole: 'developer',
    tokenId: null,
    sensitivity: 'HIGH',
    mode: 'async',
    status: 'pending',
    statusReason: null,
    requiredApprovals: 1,
    instanceId: null,
    requestedAt: T0,
    expiresAt: T0 + 300_000,
    decidedAt: null,
    executionStatus: 'none',
    executionInstanceId: null,
    executionStartedAt: null,
    executionFinishedAt: null,
    executionError: null,
    result: null,
    callHash: null,
    policyVersion: null,
    grantId: null,
    ...fields,
  };
}

/** The `position`th event of chain `c1` (or of `fields.chain`), logged at T0 + position. */
export function anEvent(position: number, prevHash: string, fields: Partial<NewAuditRecord> = {}): NewAuditRecord {
  return {
    at: T0 + position,
    actor: 'dev_user',
    action: 'tool.executed',
    tool: 'echo',
    requestId: null,
    status: 'succeeded',
    durationMs: 1,
    details: '{}',
    httpRequestId: null,
    instanceId: 'i1',
    chain: 'c1',
    chainSeq: position,
    prevHash,
    hash: `h${position}`,
    ...fields,
  };
}

/** Ids that sort like UUIDs: lower-case hex with dashes. */
export const uuid = (n: number) => `${n.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;

/** Roles, an approver with approval.manage, a developer with a token. */
export async function seedPeople(store: Persistence) {
  return store.withTransaction(async ({ policy, identity }) => {
    await policy.upsertRole('admin', 'decides', T0);
    await policy.upsertRole('developer', 'builds', T0);
    await policy.grant('admin', 'approval.manage');
    for (const id of ['approver_a', 'approver_b', 'approver_c']) await identity.insertUser({ id, role: 'admin', now: T0 });
    await identity.insertUser({ id: 'dev_user', role: 'developer', now: T0 });
    const devToken = await identity.insertToken({ userId: 'dev_user', tokenHash: 'hash-dev', prefix: 'tg_dev', now: T0 });
    return { devToken };
  });
}


export function aGrant(id: string, fields: Partial<ApprovalGrant> = {}): ApprovalGrant {
  return {
    id,
    requestId: id,
    tool: 'write_file',
    requesterId: 'dev_user',
    sensitivity: 'HIGH',
    scope: 'exact',
    arguments: '{"path":"a"}',
    matchers: '{}',
    approvers: '["admin_user"]',
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    usesLeft: 5,
    maxUses: 5,
    uses: 0,
    revokedAt: null,
    revokedBy: null,
    revokeReason: null,
    ...fields,
  };
}
