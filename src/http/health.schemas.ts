import { z } from '@hono/zod-openapi';

export const healthSchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    approval_workflow: z.boolean(),
    rbac: z.boolean(),
    pending: z.number().int().nullable().openapi({ description: 'null when the database cannot be read' }),
    approvers_online: z.number().int(),
    db: z.enum(['ok', 'error']),
  })
  .openapi('Health');

export type Health = z.infer<typeof healthSchema>;
