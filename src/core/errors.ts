import type { ApprovalStatus, ApprovalView } from '../approvals/approval.js';

/**
 * The one error catalogue of toolgate: every code any transport may answer, its HTTP status, and
 * the extra fields it carries. HTTP (`http/error-response.ts`), the WebSocket (`ws/errors.ts`) and
 * MCP (`mcp/tool-errors.ts`) each map an AppError once; docs/api.md lists the same table.
 */
export const errorCatalogue = {
  bad_request: { status: 400, meaning: 'the request cannot be served as sent (for example, a tool refused its arguments)' },
  invalid_json: { status: 400, meaning: 'the body is not JSON, or nests arrays and objects deeper than 64 levels' },
  validation_failed: { status: 400, meaning: 'a field is missing or wrong; the message names it' },
  bad_message: { status: 400, meaning: 'a WebSocket frame that is not JSON text, too deep, or not a known frame' },
  unauthorized: { status: 401, meaning: 'no, a bad or a revoked token' },
  user_disabled: { status: 401, meaning: 'the token\'s user is disabled' },
  permission_denied: { status: 403, meaning: 'the role lacks the permission', ws: 'forbidden' },
  policy_denied: { status: 403, meaning: 'a policy rule on the argument values (toolgate.json "when") denies this call' },
  forbidden: { status: 403, meaning: 'the thing belongs to someone else (an MCP session), or an approver socket is refused' },
  self_approval: { status: 403, meaning: 'an approver decided their own request' },
  approval_rejected: { status: 403, meaning: 'an approver rejected the request' },
  grant_not_allowed: { status: 403, meaning: 'the standing approval asked for is over the configured caps, for a CRITICAL tool the operator has not made eligible, or constrains an argument the request lacks; nothing was decided' },
  access_revoked: { status: 403, meaning: 'approved, but its requester was disabled or its token revoked before it ran; it never runs' },
  forbidden_origin: { status: 403, meaning: 'a browser request from a foreign origin' },
  not_found: { status: 404, meaning: 'no such route, request or user' },
  unknown_tool: { status: 404, meaning: 'no upstream, policy or catalog entry provides this tool, or its name is not a tool name' },
  approval_expired: { status: 408, meaning: 'nobody decided before the timeout' },
  not_pending: { status: 409, meaning: 'the request is no longer pending' },
  ambiguous_id: { status: 409, meaning: 'an id prefix matches more than one request' },
  already_decided: { status: 409, meaning: 'the same approver voted twice under a quorum' },
  approval_cancelled: { status: 409, meaning: 'the request was cancelled (caller gone, requester disabled, token revoked, …)' },
  binding_mismatch: { status: 409, meaning: 'approved, but the call about to run is not the one approved (its canonical hash differs, e.g. its stored arguments were altered); it never runs' },
  payload_too_large: { status: 413, meaning: 'the body is larger than BODY_LIMIT_BYTES' },
  unsupported_media_type: { status: 415, meaning: 'a body without "Content-Type: application/json"' },
  too_many_pending: { status: 429, meaning: 'the global or the per-requester pending cap is reached' },
  rate_limited: { status: 429, meaning: 'too many tool calls for this token, or failed authentications from this address' },
  internal: { status: 500, meaning: 'a bug; details only in the server log, under the same request id' },
  config_invalid: { status: 500, meaning: 'the environment or toolgate.json is invalid (start-up only; never answered to a client)' },
  upstream_error: { status: 502, meaning: 'the upstream MCP server cannot be reached or broke the protocol' },
  shutting_down: { status: 503, meaning: 'the gateway is shutting down' },
} as const satisfies Record<string, { status: number; meaning: string; ws?: string }>;

export type ErrorCode = keyof typeof errorCatalogue;
export const ERROR_CODES = Object.keys(errorCatalogue) as ErrorCode[];

/** One field-level problem of a `validation_failed`. */
export interface ValidationIssue {
  path: string[];
  message: string;
}

/**
 * The extra fields each code may carry, spread beside `error` in an HTTP body. Any code raised
 * about a request may carry that request as `approval`.
 */
export interface ErrorExtras {
  validation_failed: { issues?: ValidationIssue[] };
  too_many_pending: { limit: 'global'; max_pending: number } | { limit: 'per_user'; max_pending_per_user: number };
  /** Seconds until a retry can succeed; also sent as the Retry-After header. */
  rate_limited: { retryAfter: number };
  /** What the request is now (set when a race decided it first). */
  not_pending: { status?: ApprovalStatus };
  /** The upstream server that failed or refused the arguments. */
  upstream_error: { upstream?: string };
  bad_request: { upstream?: string };
  approval_rejected: { approval: ApprovalView };
  approval_expired: { approval: ApprovalView };
  access_revoked: { approval: ApprovalView };
  binding_mismatch: { approval: ApprovalView };
}

/** Context any error about one request may carry. */
interface RequestContext {
  approval?: ApprovalView;
}

export type ErrorExtra<C extends ErrorCode> = RequestContext & (C extends keyof ErrorExtras ? ErrorExtras[C] : Record<never, never>);
type ExtraArgument<C extends ErrorCode> = Record<never, never> extends ErrorExtra<C> ? [extra?: ErrorExtra<C>] : [extra: ErrorExtra<C>];

/** The one error type of toolgate. Its code decides the status on every transport; extra fields ride along. */
export class AppError<C extends ErrorCode = ErrorCode> extends Error {
  readonly extra: ErrorExtra<C>;

  constructor(
    readonly code: C,
    message: string,
    ...[extra]: ExtraArgument<C>
  ) {
    super(message);
    this.name = 'AppError';
    this.extra = (extra ?? {}) as ErrorExtra<C>;
  }

  get status(): number {
    return errorCatalogue[this.code].status;
  }

  /** Is this error of `code`? Narrows `extra` to that code's fields. */
  is<K extends ErrorCode>(code: K): this is AppError<K> {
    return (this.code as ErrorCode) === code;
  }

  /** The same error, about `approval`. */
  about(approval: ApprovalView): AppError<C> {
    return new AppError<C>(this.code, this.message, ...([{ ...this.extra, approval }] as ExtraArgument<C>));
  }
}

/** `{"error":{"code","message","requestId"}, ...extra}`: the body every transport that answers JSON sends. */
export function errorBody<C extends ErrorCode>(code: C, message: string, extra: ErrorExtra<C> & { requestId?: string | undefined } = {} as never) {
  const { requestId, ...rest } = extra as ErrorExtra<C> & { requestId?: string };
  return { error: { code, message, ...('requestId' in extra ? { requestId } : {}) }, ...rest };
}
