/** The one error type of toolgate. Its code decides the HTTP status; extra fields ride along in the body. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }

  get status(): number {
    return statusByCode[this.code];
  }
}

export const statusByCode = {
  bad_request: 400,
  invalid_json: 400,
  validation_failed: 400,
  unauthorized: 401,
  user_disabled: 401,
  permission_denied: 403,
  forbidden: 403,
  self_approval: 403,
  approval_rejected: 403,
  access_revoked: 403,
  forbidden_origin: 403,
  not_found: 404,
  unknown_tool: 404,
  approval_expired: 408,
  not_pending: 409,
  ambiguous_id: 409,
  already_decided: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_pending: 429,
  rate_limited: 429,
  internal: 500,
  upstream_error: 502,
  shutting_down: 503,
  approval_cancelled: 409,
} as const;

export type ErrorCode = keyof typeof statusByCode;

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message, ...pick(extra, 'requestId') }, ...omit(extra, 'requestId') };
}

function pick(o: Record<string, unknown>, key: string) {
  return key in o ? { [key]: o[key] } : {};
}
function omit(o: Record<string, unknown>, key: string) {
  const { [key]: _dropped, ...rest } = o;
  return rest;
}
