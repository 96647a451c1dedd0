import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ApprovalView } from '../approvals/approval.js';
import { AppError } from '../core/errors.js';
import type { Logger } from '../logger.js';

/** The MCP mapper of the error catalogue: an AppError becomes a tool result the model can read. */

export const APPROVAL_META = 'toolgate/approval';
export const ERROR_META = 'toolgate/error';
/** The signed receipt of an approved call (docs/receipts.md). */
export const RECEIPT_META = 'toolgate/receipt';

export function approvalSummary(approval: ApprovalView) {
  return {
    id: approval.id,
    shortId: approval.shortId,
    status: approval.status,
    statusReason: approval.statusReason,
    decisions: approval.decisions,
    execution: approval.execution.status,
    callHash: approval.callHash,
    policyVersion: approval.policyVersion,
  };
}

function errorResult(text: string, meta: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true, _meta: meta };
}

/**
 * Gate outcomes become tool results with `isError: true`, so the model reads why the call did
 * not run. Only an unknown tool is a JSON-RPC error (-32602), as the MCP specification shows.
 */
export function toolErrorResult(err: unknown, tool: string, logger: Logger): CallToolResult {
  if (err instanceof McpError) throw err;
  if (!(err instanceof AppError)) {
    logger.error({ err, tool }, 'MCP tool call failed');
    throw new McpError(ErrorCode.InternalError, 'internal error');
  }
  if (err.code === 'unknown_tool') throw new McpError(ErrorCode.InvalidParams, err.message);
  const approval = err.extra.approval as ApprovalView | undefined;
  const ref = approval ? ` (request ${approval.shortId}, id ${approval.id})` : '';
  const meta: Record<string, unknown> = { [ERROR_META]: { code: err.code, message: err.message } };
  if (approval) meta[APPROVAL_META] = approvalSummary(approval);
  switch (err.code) {
    case 'approval_rejected': {
      const decision = approval?.decisions.find((d) => d.verdict === 'reject');
      const by = decision ? ` by ${decision.approver}` : '';
      const reason = decision?.reason ?? approval?.statusReason ?? 'no reason given';
      return errorResult(`Rejected: the call to "${tool}" was rejected${by}${ref}. Reason: ${reason}. The tool did not run.`, meta);
    }
    case 'approval_expired':
      return errorResult(`Expired: no approver decided on the call to "${tool}" before its timeout${ref}. The tool did not run.`, meta);
    case 'approval_cancelled':
      return errorResult(`Cancelled: the call to "${tool}" was cancelled${ref}: ${approval?.statusReason ?? err.message}. The tool did not run.`, meta);
    case 'shutting_down':
      return errorResult(`toolgate is shutting down${ref}; the call to "${tool}" did not run. Try again shortly.`, meta);
    case 'permission_denied':
      return errorResult(`Permission denied: ${err.message}.`, meta);
    case 'too_many_pending':
      return errorResult(`Too many requests are waiting for approval: ${err.message}.`, meta);
    case 'bad_request':
    case 'validation_failed':
      return errorResult(`Invalid arguments for "${tool}": ${err.message}`, meta);
    case 'upstream_error':
      return errorResult(
        `Upstream error: ${err.message}${approval ? `. The call had been approved${ref} but did not complete; check its effects before retrying` : ''}.`,
        meta,
      );
    default:
      return errorResult(`${err.code}: ${err.message}${ref}`, meta);
  }
}
