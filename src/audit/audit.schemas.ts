import { z } from '@hono/zod-openapi';
import type { AuditEventView } from './audit.service.js';

/** Request and response schemas of the audit API. */

export const auditQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(50),
    user: z.string().max(200).optional(),
    tool: z.string().max(200).optional(),
    action: z.string().max(100).optional(),
    request: z.string().max(64).optional().openapi({ description: 'the events of one approval request (its full id)' }),
    since: z.iso.datetime({ offset: true }).optional(),
    before: z.coerce.number().int().positive().optional().openapi({ description: 'pages backwards: the `seq` of the last (oldest) event of the previous page' }),
  })
  .strict();

export const auditEventSchema = z
  .object({
    seq: z.number().int().openapi({ description: 'unique across the log; events are listed by time, then seq' }),
    chain: z.string().openapi({ description: "the writer's hash chain (one per gateway process or CLI run; '' for the chain from before per-writer chains)" }),
    chainSeq: z.number().int().openapi({ description: 'the position in the chain, from 1' }),
    at: z.string().openapi({ format: 'date-time' }),
    actor: z.string(),
    action: z.string(),
    tool: z.string().nullable(),
    requestId: z.string().nullable(),
    status: z.string().nullable(),
    durationMs: z.number().nullable(),
    details: z.unknown().openapi({ description: 'what happened, secrets redacted' }),
    httpRequestId: z.string().nullable().openapi({ description: 'the X-Request-Id of the HTTP request that caused the event' }),
    prevHash: z.string().openapi({ description: 'the hash of the event before it in its chain' }),
    hash: z.string(),
  })
  .openapi('AuditEvent');

export const auditPageSchema = z.object({ events: z.array(auditEventSchema), count: z.number().int() }).openapi('AuditPage');

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameEvent: Same<z.infer<typeof auditEventSchema>, AuditEventView> = true;
void sameEvent;

export const auditVerificationSchema = z
  .object({
    ok: z.boolean().openapi({ description: 'every hash chain verifies and agrees with the signed checkpoints' }),
    chain: z.object({
      ok: z.boolean(),
      checked: z.number().int().openapi({ description: 'events recomputed, over every chain, each from its anchor' }),
      chains: z.number().int().openapi({ description: 'hash chains with events: one per writer (gateway process or CLI run), plus the one from before per-writer chains' }),
      anchorSeq: z.number().int().openapi({ description: 'the largest seq retention pruned through in any chain (0: nothing pruned)' }),
      brokenAt: z.object({ seq: z.number().int(), chain: z.string().nullable(), reason: z.string() }).nullable(),
    }),
    checkpoints: z.object({
      ok: z.boolean(),
      count: z.number().int(),
      latestSeq: z.number().int().nullable().openapi({ description: 'the newest signed checkpoint the chain was held to' }),
      uncovered: z.number().int().openapi({ description: 'events after the newest checkpoint, not yet under a signature' }),
      problems: z.array(z.string()),
      notes: z.array(z.string()),
    }),
    verifiedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('AuditVerification');
export type AuditVerification = z.infer<typeof auditVerificationSchema>;
