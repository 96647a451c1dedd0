import type { approvalRequests, approvalDecisions } from '../db/schema.js';

export type Sensitivity = 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
export const SENSITIVITIES: readonly Sensitivity[] = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled';
export type ApprovalMode = 'wait' | 'async' | 'decision';
/**
 * `interrupted`: it was running when its gateway crashed or was declared dead, so it may or may
 * not have run; like `failed` it is final and never retried.
 */
export type ExecutionStatus = 'none' | 'pending' | 'running' | 'succeeded' | 'failed' | 'interrupted';
export const EXECUTION_STATUSES: readonly ExecutionStatus[] = ['none', 'pending', 'running', 'succeeded', 'failed', 'interrupted'];

/** Has the execution reached a final state (or will it never start)? */
export function executionSettled(status: ExecutionStatus): boolean {
  return status !== 'pending' && status !== 'running';
}
export type Verdict = 'approve' | 'reject';

export type ApprovalRow = typeof approvalRequests.$inferSelect;
export type DecisionRow = typeof approvalDecisions.$inferSelect;

export function needsApproval(sensitivity: Sensitivity): boolean {
  return sensitivity === 'HIGH' || sensitivity === 'CRITICAL';
}

/** The approval as the HTTP API, the WebSocket and the CLI show it. */
export interface ApprovalView {
  id: string;
  shortId: string;
  tool: string;
  sensitivity: Sensitivity;
  arguments: unknown;
  requester: { id: string; role: string };
  mode: ApprovalMode;
  status: ApprovalStatus;
  statusReason: string | null;
  requestedAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decisions: { approver: string; verdict: Verdict; reason: string; at: string }[];
  requiredApprovals: number;
  execution: { status: ExecutionStatus; startedAt: string | null; finishedAt: string | null; error: string | null };
  result: unknown;
}

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

export function toApprovalView(row: ApprovalRow, decisions: readonly DecisionRow[]): ApprovalView {
  return {
    id: row.id,
    shortId: row.shortId,
    tool: row.tool,
    sensitivity: row.sensitivity,
    arguments: JSON.parse(row.arguments),
    requester: { id: row.requesterId, role: row.requesterRole },
    mode: row.mode,
    status: row.status,
    statusReason: row.statusReason,
    requestedAt: iso(row.requestedAt),
    expiresAt: iso(row.expiresAt),
    decidedAt: isoOrNull(row.decidedAt),
    decisions: decisions.map((d) => ({ approver: d.approverId, verdict: d.verdict, reason: d.reason, at: iso(d.decidedAt) })),
    requiredApprovals: row.requiredApprovals,
    execution: {
      status: row.executionStatus,
      startedAt: isoOrNull(row.executionStartedAt),
      finishedAt: isoOrNull(row.executionFinishedAt),
      error: row.executionError,
    },
    result: row.result === null ? null : JSON.parse(row.result),
  };
}
