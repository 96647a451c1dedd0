import { z } from '@hono/zod-openapi';
import { approvalSummaryFields, approvalViewSchema, grantPreviewViewSchema, grantRequestSchema, grantViewSchema, matcherViewSchema } from './approval.schemas.js';

/** Request and response schemas of the approvals API: they validate, type the routes and make /openapi.json. */

// Rebuilt from the shape: zod 4 schemas made before @hono/zod-openapi loaded (the CLI loads the
// plain module first) have no `.openapi()`; the fields keep their `.meta()` descriptions.
export const approvalSchema = z.object(approvalViewSchema.shape).openapi('Approval');

export const approvalSummarySchema = approvalSchema.extend(approvalSummaryFields).openapi('ApprovalSummary', {
  description: 'An approval as lists and pushed frames carry it: arguments over 2 KiB are a shortened preview, a result over 2 KiB is null; GET /api/approvals/{id} has them whole.',
});

export const approvalEnvelopeSchema = z.object({ approval: approvalSchema }).openapi('ApprovalEnvelope');
export const pendingListSchema = z.object({ pending_approvals: z.array(approvalSummarySchema), count: z.number().int() }).openapi('PendingList');

export const decisionRequestBody = z
  .object({ tool: z.string().min(1).max(200), arguments: z.record(z.string(), z.unknown()).default({}) })
  .strict();
export const decideBody = z.object({ reason: z.string().trim().min(1, 'a reason is required').max(1000) }).strict();

export const grantSchema = z.object({ ...grantViewSchema.shape, match: z.record(z.string(), z.object(matcherViewSchema.shape)) }).openapi('Grant', {
  description: 'A standing approval: the same call allowed again for the same requester until it expires, runs out of calls or is revoked (docs/receipts.md)',
});
export const approveBody = decideBody
  .extend({
    grant: z
      .object(grantRequestSchema.shape)
      .strict()
      .optional()
      .openapi({ description: 'approve and allow the same call again: `for` and/or `times`; broadened with `match` or `anyArgs` (docs/receipts.md)' }),
  })
  .strict();
export const approveAnswerSchema = z
  .object({ approval: approvalSchema, grant: grantSchema.nullable().openapi({ description: 'the standing approval made by this approval (null when none was, e.g. a quorum still short, or an approver who asked for none)' }) })
  .openapi('ApproveAnswer');
export const grantPreviewBody = z.object({ grant: z.object(grantRequestSchema.shape).strict() }).strict();
export const grantPreviewSchema = z
  .object({
    preview: z.object({ ...grantPreviewViewSchema.shape, match: z.record(z.string(), z.object(matcherViewSchema.shape)) }).openapi('GrantPreview', {
      description: 'what approving with this standing approval would allow, by the rules the approval applies; nothing is decided',
    }),
  })
  .openapi('GrantPreviewEnvelope');
export const grantListSchema = z.object({ grants: z.array(grantSchema), count: z.number().int() }).openapi('GrantList');
export const grantEnvelopeSchema = z.object({ grant: grantSchema }).openapi('GrantEnvelope');
export const grantsQuery = z.object({ all: z.enum(['true', 'false']).optional(), limit: z.coerce.number().int().min(1).max(1000).default(200) }).strict();
export const pendingQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) }).strict();
export const waitQuery = z.object({ wait: z.coerce.number().min(0).max(60).optional() }).strict();
export const idParams = z.object({
  id: z.string().openapi({ description: 'the full id, or a unique prefix of at least 8 characters (the short id), with or without dashes' }),
});

export const historyQuery = z
  .object({
    status: z
      .string()
      .regex(/^(pending|approved|rejected|expired|cancelled)(,(pending|approved|rejected|expired|cancelled))*$/, 'a comma-separated list of pending, approved, rejected, expired, cancelled')
      .optional()
      .openapi({ description: 'comma-separated statuses (the verdict), e.g. `approved,rejected`' }),
    tool: z.string().max(200).optional(),
    requester: z.string().max(200).optional(),
    since: z.iso.datetime({ offset: true }).optional().openapi({ description: 'requested at or after' }),
    before: z.iso.datetime({ offset: true }).optional().openapi({ description: 'requested before: pass the oldest `requestedAt` of the previous page' }),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .strict();
export const historyListSchema = z.object({ approvals: z.array(approvalSummarySchema), count: z.number().int() }).openapi('ApprovalHistory');
