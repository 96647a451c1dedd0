import { z } from 'zod';
import type { ApprovalSummary, ApprovalView } from './approval.js';

/**
 * The approval as every channel shows it (HTTP, the WebSocket, the CLI), in plain zod so that the
 * CLI and the WebSocket protocol can use it without the HTTP kit; approvals.schemas.ts names it
 * for the OpenAPI document.
 */

const isoTime = z.string().meta({ format: 'date-time' });

export const decisionViewSchema = z.object({
  approver: z.string(),
  verdict: z.enum(['approve', 'reject']),
  reason: z.string(),
  at: isoTime,
  withdrawn: z.literal(true).optional().meta({ description: 'on a pending request: the approver was since disabled or lost approval.manage, so this approval no longer counts' }),
});

export const approvalViewSchema = z.object({
  id: z.string().meta({ format: 'uuid' }),
  shortId: z.string().meta({ description: 'first 8 hex characters of the id' }),
  tool: z.string(),
  sensitivity: z.enum(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']),
  arguments: z.unknown().meta({ description: 'the arguments as sent, or `{"sha256","bytes"}` for a decision-only request of a tool that needs no approval' }),
  requester: z.object({ id: z.string(), role: z.string() }),
  mode: z.enum(['wait', 'async', 'decision']),
  status: z.enum(['pending', 'approved', 'rejected', 'expired', 'cancelled']),
  statusReason: z.string().nullable(),
  requestedAt: isoTime,
  expiresAt: isoTime,
  decidedAt: isoTime.nullable(),
  decisions: z.array(decisionViewSchema),
  requiredApprovals: z.number().int(),
  execution: z.object({
    status: z.enum(['none', 'pending', 'running', 'succeeded', 'failed', 'interrupted']),
    startedAt: isoTime.nullable(),
    finishedAt: isoTime.nullable(),
    error: z.string().nullable(),
  }),
  result: z.unknown().meta({ description: 'the MCP CallToolResult once the gateway ran the tool, else null' }),
  callHash: z.string().nullable().meta({ description: 'SHA-256 (hex) of the RFC 8785 canonical form of {tool, arguments, requester, policyVersion}: what the approval is bound to; execution refuses anything else (docs/receipts.md)' }),
  policyVersion: z.string().nullable().meta({ description: 'the version of the effective policy the request was made under' }),
  receipt: z.string().optional().meta({ description: 'on an approved request: its signed receipt, a compact JWS (EdDSA) verifiable against /.well-known/jwks.json (docs/receipts.md)' }),
});

export const approvalSummaryFields = {
  arguments: z.unknown().meta({ description: 'the arguments, or a preview of them (each long string keeps its head and tail) when argumentsTruncated' }),
  argumentsBytes: z.number().int().meta({ description: 'size of the whole arguments JSON in UTF-8 bytes' }),
  argumentsTruncated: z.boolean(),
};

export const approvalSummaryViewSchema = approvalViewSchema.extend(approvalSummaryFields);

// The schemas describe exactly the views the service builds.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameView: Same<z.infer<typeof approvalViewSchema>, ApprovalView> = true;
const sameSummary: Same<z.infer<typeof approvalSummaryViewSchema>, ApprovalSummary> = true;
void sameView;
void sameSummary;
