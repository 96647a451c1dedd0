import { z } from '@hono/zod-openapi';
import { ERROR_CODES, type ErrorCode } from './errors.js';
import { approvalSchema } from '../approvals/approvals.schemas.js';

/** `{"error":{"code","message","requestId"}, ...extra}`: every error answer, with every code's extra fields. */
export const errorResponseSchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      requestId: z.string().optional().openapi({ description: 'the X-Request-Id of this request, as the log and the audit store it' }),
    }),
    approval: approvalSchema.optional().openapi({ description: 'the request the error is about (approval_rejected, approval_expired, access_revoked, …)' }),
    issues: z
      .array(z.object({ path: z.array(z.string()), message: z.string() }))
      .optional()
      .openapi({ description: 'validation_failed: up to 10 problems' }),
    limit: z.enum(['global', 'per_user']).optional().openapi({ description: 'too_many_pending: which cap was reached' }),
    max_pending: z.number().int().optional().openapi({ description: 'too_many_pending (global): the cap' }),
    max_pending_per_user: z.number().int().optional().openapi({ description: 'too_many_pending (per_user): the cap' }),
    retryAfter: z.number().int().optional().openapi({ description: 'rate_limited: seconds until a retry can succeed (also Retry-After)' }),
    status: z.string().optional().openapi({ description: 'not_pending: what the request is now' }),
    upstream: z.string().optional().openapi({ description: 'upstream_error, bad_request: the upstream server' }),
  })
  .openapi('Error');

export type ErrorResponse = z.infer<typeof errorResponseSchema>;
