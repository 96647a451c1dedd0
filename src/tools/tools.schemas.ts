import { z } from '@hono/zod-openapi';
import { approvalSchema } from '../approvals/approvals.schemas.js';

/** Request and response schemas of the tools API. */

export const toolCallBody = z.object({ arguments: z.record(z.string(), z.unknown()).default({}) }).strict();
export const toolNameParams = z.object({ name: z.string().openapi({ description: 'the tool name: 1 to 128 of `A-Z a-z 0-9 _ - . /`, starting with a letter or a digit' }) });

/** Documented only: the route reads `Prefer` itself. */
export const toolCallHeaders = z.object({
  prefer: z.string().optional().openapi({ description: '`respond-async`: answer 202 at once instead of waiting for the decision' }),
});

export const toolSchema = z
  .object({
    name: z.string(),
    title: z.string().nullable(),
    description: z.string(),
    sensitivity: z.enum(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']),
    requiresApproval: z.boolean().openapi({ description: 'a call waits for an approver (HIGH or CRITICAL with the approval workflow on)' }),
    inputSchema: z.record(z.string(), z.unknown()).openapi({ description: 'the JSON Schema of the arguments, as the upstream declares it' }),
    annotations: z.record(z.string(), z.unknown()).openapi({ description: 'the MCP tool annotations (readOnlyHint, destructiveHint, …)' }),
  })
  .openapi('Tool');

export const toolListSchema = z.object({ tools: z.array(toolSchema), count: z.number().int() }).openapi('ToolList');

/** An MCP CallToolResult, passed through as the upstream returned it. */
export const callToolResultSchema = z
  .looseObject({ content: z.array(z.looseObject({ type: z.string() })), isError: z.boolean().optional() })
  .openapi('CallToolResult', { description: 'the MCP CallToolResult; `isError: true` when the tool ran and reported an error' });

export const toolCallResultSchema = z
  .object({ result: callToolResultSchema, approval: approvalSchema.optional().openapi({ description: 'present when the call needed an approval' }) })
  .openapi('ToolCallResult');
