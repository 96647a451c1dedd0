import { z } from 'zod';
import { approvalSummaryViewSchema, grantRequestSchema, grantViewSchema } from '../approvals/approval.schemas.js';

/**
 * The approvers' WebSocket protocol (`GET /ws/approvals`): every frame either side may send, as
 * JSON text. The server builds and parses its frames through this module, and so do the CLI's
 * `toolgate approve`, the benchmark's approver bot and the tests.
 */

export const WS_PATH = '/ws/approvals';
/** Close codes beside the standard ones: no, bad or revoked credentials; a role without approval.view. */
export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_GOING_AWAY = 1001;
/** Frames larger than this close the socket with 1009. */
export const MAX_FRAME_BYTES = 64 * 1024;

/** Echoed in the answer to the frame that carried it. */
const ref = z.union([z.string().max(200), z.number()]);

export const authFrame = z.object({ type: z.literal('auth'), token: z.string().min(1).max(512) }).strict();
export const decideFrame = z
  .object({
    type: z.literal('decide'),
    ref: ref.optional(),
    id: z.string().min(1).max(64),
    decision: z.enum(['approve', 'reject']),
    reason: z.string().trim().min(1, 'a reason is required').max(1000),
    /** With `approve`: a standing approval (docs/receipts.md). */
    grant: grantRequestSchema.optional(),
  })
  .strict();
export const listFrame = z.object({ type: z.literal('list'), ref: ref.optional(), limit: z.number().int().min(1).max(1000).optional() }).strict();

export const clientFrame = z.discriminatedUnion('type', [authFrame, decideFrame, listFrame]);
export type ClientFrame = z.infer<typeof clientFrame>;
/** What a client writes: `decide` with its reason as typed (the server trims it). */
export type ClientFrameInput = z.input<typeof clientFrame>;

const approval = approvalSummaryViewSchema;

export const helloFrame = z.object({ type: z.literal('hello'), approver: z.object({ id: z.string(), role: z.string() }), pending: z.array(approval) });
export const approvalEventFrame = z.object({ type: z.enum(['approval.requested', 'approval.updated', 'approval.resolved']), approval });
export const decideOkFrame = z.object({ type: z.literal('decide.ok'), ref: ref.optional(), approval, grant: grantViewSchema.nullable().optional() });
export const pendingFrame = z.object({ type: z.literal('pending'), ref: ref.optional(), pending: z.array(approval) });
/** `code` is the error catalogue's (src/core/errors.ts), as ws/errors.ts maps it. */
export const errorFrame = z.object({ type: z.literal('error'), ref: ref.optional(), code: z.string(), message: z.string() });

export const serverFrame = z.discriminatedUnion('type', [helloFrame, approvalEventFrame, decideOkFrame, pendingFrame, errorFrame]);
export type ServerFrame = z.infer<typeof serverFrame>;
export type ApprovalEventType = z.infer<typeof approvalEventFrame>['type'];

/** Serializes a server frame; the type is the protocol's, so the server cannot send a frame it does not define. */
export function encodeServerFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

/** Parses a frame the server sent (the CLI, the bench bot, the tests); throws on one the protocol does not define. */
export function parseServerFrame(text: string): ServerFrame {
  return serverFrame.parse(JSON.parse(text));
}

export function encodeClientFrame(frame: ClientFrameInput): string {
  return JSON.stringify(frame);
}
