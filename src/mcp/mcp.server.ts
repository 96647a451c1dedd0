import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type CallToolResult,
  type ServerNotification,
  type ServerRequest,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { ApprovalView } from '../approvals/approval.js';
import type { ApprovalCore, Clock } from '../approvals/core.js';
import { outcomeError } from '../approvals/gate.js';
import type { Logger } from '../logger.js';
import type { Principal } from '../policy/policy.service.js';
import { visibleTools, type ToolCatalogDeps } from '../tools/catalog.js';
import { APPROVAL_META, approvalSummary, RECEIPT_META, toolErrorResult } from './tool-errors.js';

export const SENSITIVITY_META = 'toolgate/sensitivity';
export const REQUIRES_APPROVAL_META = 'toolgate/requiresApproval';

export const DEFAULT_PROGRESS_INTERVAL_MS = 5000;

export interface McpServerDeps extends ToolCatalogDeps {
  approvals: ApprovalCore;
  clock: Clock;
  logger: Logger;
  /** How often a waiting call sends `notifications/progress`. */
  progressIntervalMs: number;
}

/** What the HTTP layer hands each MCP request: who is calling, re-authenticated on this very request. */
export interface McpCaller {
  principal: Principal;
  /** Aborts when the client drops the HTTP request that carries this call. */
  signal?: AbortSignal | undefined;
  httpRequestId?: string | undefined;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

const INSTRUCTIONS =
  'toolgate gates these tools behind human approval. Tools whose _meta "toolgate/requiresApproval" is true ' +
  '(sensitivity HIGH or CRITICAL) wait until an approver decides, which may take minutes; send a progressToken ' +
  'to receive progress notifications while waiting. A rejected or expired call returns isError: true.';

/** The caller rides in `authInfo.extra`, put there by the HTTP layer for every request. */
export function callerAuthInfo(caller: McpCaller) {
  return { token: '', clientId: caller.principal.id, scopes: [] as string[], extra: { caller } };
}

function callerOf(extra: Extra): McpCaller {
  const caller = extra.authInfo?.extra?.caller as McpCaller | undefined;
  if (!caller) throw new McpError(ErrorCode.InternalError, 'no caller on this request');
  return caller;
}

/**
 * One MCP server per session. It is the low-level `Server`, not `McpServer`, because it proxies
 * the upstreams' JSON Schemas as they are, which McpServer (zod schemas) cannot.
 */
export function createMcpServer(deps: McpServerDeps, activity: { busy: number } = { busy: 0 }): Server {
  const server = new Server({ name: 'toolgate', version: '0.1.0' }, { capabilities: { tools: { listChanged: true } }, instructions: INSTRUCTIONS });

  server.setRequestHandler(ListToolsRequestSchema, (_request, extra) => {
    const { principal } = callerOf(extra);
    return { tools: visibleTools(deps, principal).map(toMcpTool) };
  });

  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const caller = callerOf(extra);
    const { name } = request.params;
    const args = request.params.arguments ?? {};
    const progressToken = request.params._meta?.progressToken;
    const signal = caller.signal ? AbortSignal.any([extra.signal, caller.signal]) : extra.signal;
    let stopProgress: (() => void) | undefined;
    activity.busy++;
    try {
      const outcome = await deps.approvals.gate.callTool(caller.principal, name, args, 'wait', {
        signal,
        httpRequestId: caller.httpRequestId,
        onPending: (approval) => {
          if (progressToken !== undefined) stopProgress = reportWaiting(deps, approval, (params) => extra.sendNotification({ method: 'notifications/progress', params: { progressToken, ...params } }));
        },
      });
      if (outcome.kind === 'approved-and-ran') {
        return withMeta(outcome.result, { [APPROVAL_META]: approvalSummary(outcome.approval), ...(outcome.approval.receipt ? { [RECEIPT_META]: outcome.approval.receipt } : {}) });
      }
      if (outcome.kind === 'ran') return outcome.result;
      if (outcome.kind === 'accepted') throw new McpError(ErrorCode.InternalError, 'the call was accepted asynchronously, which MCP does not use');
      // Rejected, expired, cancelled, refused: the catalogue's error, as a tool result the model reads.
      return toolErrorResult(outcomeError(outcome), name, deps.logger);
    } catch (err) {
      return toolErrorResult(err, name, deps.logger);
    } finally {
      stopProgress?.();
      activity.busy--;
    }
  });

  return server;
}

function toMcpTool(tool: ReturnType<typeof visibleTools>[number]): Tool {
  const gate = tool.requiresApproval
    ? `each call waits for a human approver before it runs`
    : `runs at once`;
  return {
    name: tool.name,
    ...(tool.title ? { title: tool.title } : {}),
    description: `${tool.description ? `${tool.description}\n\n` : ''}[toolgate] sensitivity ${tool.sensitivity}: ${gate}.`,
    inputSchema: tool.inputSchema,
    annotations: tool.annotations as Tool['annotations'],
    _meta: { [SENSITIVITY_META]: tool.sensitivity, [REQUIRES_APPROVAL_META]: tool.requiresApproval },
  };
}

/**
 * Sends progress now and every interval until stopped, so that clients which reset their
 * request timeout on progress keep waiting for the approver.
 */
function reportWaiting(
  deps: McpServerDeps,
  approval: ApprovalView,
  send: (params: { progress: number; message: string }) => Promise<void>,
): () => void {
  const expiresAt = Date.parse(approval.expiresAt);
  let progress = 0;
  const tick = () => {
    const left = Math.max(0, expiresAt - deps.clock.now());
    progress++;
    send({ progress, message: `waiting for approval (request ${approval.shortId}, ${formatDuration(left)} left)` }).catch((err: Error) =>
      deps.logger.debug({ requestId: approval.id, err: err.message }, 'could not send MCP progress'),
    );
  };
  tick();
  const timer = setInterval(tick, deps.progressIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export function formatDuration(ms: number): string {
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

function withMeta(result: CallToolResult, meta: Record<string, unknown>): CallToolResult {
  return { ...result, _meta: { ...result._meta, ...meta } };
}
