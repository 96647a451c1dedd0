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
  grantId: z.string().nullable().meta({ description: 'the standing approval that allowed this call without asking an approver, if one did' }),
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

/** A standing approval asked for with an approval (HTTP body, WebSocket `decide` frame, CLI flags). */
export const grantRequestSchema = z
  .object({
    for: z.union([z.string().max(20), z.number().positive()]).optional().meta({ description: 'how long: "90s", "15m", "2h", "1d" or seconds' }),
    times: z.number().int().min(1).max(1_000_000).optional().meta({ description: 'at most this many calls' }),
    match: z
      .record(z.string().min(1).max(200), z.string().max(1000))
      .optional()
      .meta({ description: 'broaden: per argument, `value` (equal), `prefix/**` (a path prefix) or a glob with `*` and `?`; every other argument must stay equal' }),
    anyArgs: z.boolean().optional().meta({ description: 'broaden to any arguments of the tool' }),
  })
  .strict();

export const matcherViewSchema = z.object({ kind: z.enum(['eq', 'prefix', 'glob']), value: z.string() });

export const grantViewSchema = z.object({
  id: z.string(),
  requestId: z.string().meta({ description: 'the request whose approval made it' }),
  tool: z.string(),
  requester: z.string(),
  sensitivity: z.enum(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']),
  scope: z.enum(['exact', 'match', 'any']),
  scopeText: z.string().meta({ description: 'what it allows, in words' }),
  arguments: z.unknown().meta({ description: 'the approved arguments' }),
  match: z.record(z.string(), matcherViewSchema),
  approvers: z.array(z.string()),
  createdAt: isoTime,
  expiresAt: isoTime,
  usesLeft: z.number().int().nullable(),
  maxUses: z.number().int().nullable(),
  uses: z.number().int(),
  state: z.enum(['active', 'expired', 'used_up', 'revoked']),
  revokedAt: isoTime.nullable(),
  revokedBy: z.string().nullable(),
  revokeReason: z.string().nullable(),
});
export type GrantView = z.infer<typeof grantViewSchema>;

/** What approving a request with a standing approval would allow, before anything is decided. */
export const grantPreviewViewSchema = z.object({
  tool: z.string(),
  requester: z.string(),
  sensitivity: z.enum(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']),
  scope: z.enum(['exact', 'match', 'any']),
  scopeText: z.string().meta({ description: 'what it would allow, in words' }),
  match: z.record(z.string(), matcherViewSchema).meta({ description: 'how each constrained argument is read: equality, a path prefix or a glob' }),
  arguments: z.unknown().meta({ description: 'the arguments that would be approved' }),
  seconds: z.number().int().meta({ description: 'how long it would last: the time asked for, else the cap' }),
  uses: z.number().int().meta({ description: 'how many calls it would allow: the number asked for, else the cap' }),
  requiredApprovals: z.number().int(),
  approvals: z.number().int().meta({ description: 'approvals that count so far; with a quorum, the grant is made only once it is reached and every counted approval asked for one' }),
});
export type GrantPreview = z.infer<typeof grantPreviewViewSchema>;
