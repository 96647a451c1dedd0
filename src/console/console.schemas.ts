import { z } from '@hono/zod-openapi';

/** Schemas of the web console's session API. */

export const signInBody = z
  .object({ token: z.string().trim().min(1, 'a token is required').max(512).openapi({ description: 'an approver\u2019s API token; exchanged for a session, never stored by the page' }) })
  .strict();

const grantCap = z.object({ maxSeconds: z.number().int(), maxUses: z.number().int() }).nullable();

export const sessionSchema = z
  .object({
    id: z.string(),
    user: z.object({ id: z.string(), role: z.string() }),
    expiresAt: z.string().openapi({ description: 'ISO-8601 UTC' }),
    /** What the console may offer: deciding needs approval.manage, the audit log needs admin. */
    can: z.object({ decide: z.boolean(), audit: z.boolean() }),
    grantCaps: z
      .object({ HIGH: grantCap, CRITICAL: grantCap })
      .openapi({ description: 'the most a standing approval may allow per sensitivity (GRANT_MAX_DURATION_*, GRANT_MAX_USES_*); null: none may be made' }),
  })
  .openapi('ConsoleSession');

export const sessionEnvelopeSchema = z.object({ session: sessionSchema.nullable() }).openapi('ConsoleSessionEnvelope');
export const signedOutSchema = z.object({ signedOut: z.boolean() }).openapi('SignedOut');
