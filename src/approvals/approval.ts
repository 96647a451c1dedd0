export type Sensitivity = 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
export const SENSITIVITIES: readonly Sensitivity[] = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled';
export type ApprovalMode = 'wait' | 'async' | 'decision';
/**
 * `interrupted`: it was running when its gateway crashed or was declared dead, so it may or may
 * not have run; like `failed` it is final and never retried.
 */
export type ExecutionStatus = 'none' | 'pending' | 'running' | 'succeeded' | 'failed' | 'interrupted';
export const EXECUTION_STATUSES: readonly ExecutionStatus[] = ['none', 'pending', 'running', 'succeeded', 'failed', 'interrupted'];

/** Has the execution reached a final state (or will it never start)? */
export function executionSettled(status: ExecutionStatus): boolean {
  return status !== 'pending' && status !== 'running';
}
export type Verdict = 'approve' | 'reject';

/** One approval request as the store keeps it. Times are epoch milliseconds; JSON is kept as text. */
export interface ApprovalRecord {
  id: string;
  shortId: string;
  tool: string;
  /** The arguments' JSON text. */
  arguments: string;
  requesterId: string;
  requesterRole: string;
  /** The API token that made the request; null for X-User-ID and anonymous callers. */
  tokenId: number | null;
  sensitivity: Sensitivity;
  mode: ApprovalMode;
  status: ApprovalStatus;
  statusReason: string | null;
  requiredApprovals: number;
  /** The gateway instance holding a `wait` caller's connection. */
  instanceId: string | null;
  requestedAt: number;
  expiresAt: number;
  decidedAt: number | null;
  executionStatus: ExecutionStatus;
  executionInstanceId: string | null;
  executionStartedAt: number | null;
  executionFinishedAt: number | null;
  executionError: string | null;
  /** The tool's result as JSON text. */
  result: string | null;
  /** SHA-256 (hex) of the canonical call (approvals/binding.ts); null on requests made before binding existed. */
  callHash: string | null;
  /** The version of the effective policy the request was made under. */
  policyVersion: string | null;
  /** The standing approval (grant) that allowed it without asking, if one did. */
  grantId: string | null;
}

/** One approver's verdict on a request. */
export interface DecisionRecord {
  id: number;
  requestId: string;
  approverId: string;
  verdict: Verdict;
  reason: string;
  decidedAt: number;
  /** The approver was since disabled or lost approval.manage: an approval of theirs no longer counts. */
  withdrawn: boolean;
  /** The standing approval the approver asked for with this approval (JSON GrantTerms), if any. */
  grant: string | null;
}


export function needsApproval(sensitivity: Sensitivity): boolean {
  return sensitivity === 'HIGH' || sensitivity === 'CRITICAL';
}

/** The approval as the HTTP API, the WebSocket and the CLI show it. */
export interface ApprovalView {
  id: string;
  shortId: string;
  tool: string;
  sensitivity: Sensitivity;
  arguments: unknown;
  requester: { id: string; role: string };
  mode: ApprovalMode;
  status: ApprovalStatus;
  statusReason: string | null;
  requestedAt: string;
  expiresAt: string;
  decidedAt: string | null;
  /** `withdrawn: true` on a pending request's approval whose approver was since disabled or demoted: it no longer counts. */
  decisions: { approver: string; verdict: Verdict; reason: string; at: string; withdrawn?: true }[];
  requiredApprovals: number;
  execution: { status: ExecutionStatus; startedAt: string | null; finishedAt: string | null; error: string | null };
  result: unknown;
  /** What the approval is bound to: the SHA-256 of the canonical call, and the policy version it was made under. */
  callHash: string | null;
  policyVersion: string | null;
  /** The standing approval that allowed it without asking, if one did. */
  grantId: string | null;
  /** The signed receipt (compact JWS) of an approved request. */
  receipt?: string | undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

export function toApprovalView(row: ApprovalRecord, decisions: readonly DecisionRecord[], args: unknown = JSON.parse(row.arguments)): ApprovalView {
  return {
    id: row.id,
    shortId: row.shortId,
    tool: row.tool,
    sensitivity: row.sensitivity,
    arguments: args,
    requester: { id: row.requesterId, role: row.requesterRole },
    mode: row.mode,
    status: row.status,
    statusReason: row.statusReason,
    requestedAt: iso(row.requestedAt),
    expiresAt: iso(row.expiresAt),
    decidedAt: isoOrNull(row.decidedAt),
    decisions: decisions.map((d) => ({
      approver: d.approverId,
      verdict: d.verdict,
      reason: d.reason,
      at: iso(d.decidedAt),
      ...(d.withdrawn && row.status === 'pending' && d.verdict === 'approve' ? { withdrawn: true as const } : {}),
    })),
    requiredApprovals: row.requiredApprovals,
    execution: {
      status: row.executionStatus,
      startedAt: isoOrNull(row.executionStartedAt),
      finishedAt: isoOrNull(row.executionFinishedAt),
      error: row.executionError,
    },
    result: row.result === null ? null : JSON.parse(row.result),
    callHash: row.callHash,
    policyVersion: row.policyVersion,
    grantId: row.grantId,
  };
}

/** Tool names: what MCP recommends (letters, digits, `_ - . /`, at most 128), starting with a letter or digit. */
export const TOOL_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

/** The shortest id prefix accepted anywhere (HTTP, the one-shot commands, the live session): a short id. */
export const MIN_ID_PREFIX = 8;

const ELLIPSIS = '…';
const KEEP_ITEMS = 10;

/**
 * A copy of a JSON value in which every string (and key) longer than `cap` keeps its head and
 * tail around an ellipsis, and every array or object with more than 2×10 entries keeps its first
 * and last 10. Head and tail, because the dangerous part of an argument is often at its end.
 */
export function shortenValue(value: unknown, cap: number): { value: unknown; cuts: number } {
  let cuts = 0;
  const str = (s: string) => {
    if (s.length <= cap) return s;
    cuts++;
    const head = Math.ceil((cap - 1) / 2);
    return `${s.slice(0, head)}${ELLIPSIS}${s.slice(s.length - (cap - 1 - head))}`;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return str(v);
    if (Array.isArray(v)) {
      if (v.length <= 2 * KEEP_ITEMS) return v.map(walk);
      cuts++;
      return [...v.slice(0, KEEP_ITEMS).map(walk), `${ELLIPSIS}${v.length - 2 * KEEP_ITEMS} more items${ELLIPSIS}`, ...v.slice(-KEEP_ITEMS).map(walk)];
    }
    if (v && typeof v === 'object') {
      const entries = Object.entries(v);
      const kept = entries.length <= 2 * KEEP_ITEMS ? entries : [...entries.slice(0, KEEP_ITEMS), [ELLIPSIS, `${entries.length - 2 * KEEP_ITEMS} more keys`], ...entries.slice(-KEEP_ITEMS)];
      if (kept !== entries) cuts++;
      const out: Record<string, unknown> = {};
      for (const [k, val] of kept) Object.defineProperty(out, str(k), { value: walk(val), enumerable: true, writable: true, configurable: true });
      return out;
    }
    return v;
  };
  return { value: walk(value), cuts };
}

/** Arguments in a list or a push frame take at most this many bytes of JSON; the rest is fetched on demand. */
export const SUMMARY_ARGUMENTS_BYTES = 2048;

export interface ArgumentsSummary {
  arguments: unknown;
  /** Size of the whole arguments' JSON, in UTF-8 bytes. */
  argumentsBytes: number;
  /** True when `arguments` is a shortened preview: GET /api/approvals/{id} has them whole. */
  argumentsTruncated: boolean;
}

/** A request as pushed lists show it: bounded arguments and result; the rest as in the full view. */
export type ApprovalSummary = ApprovalView & ArgumentsSummary;

/** Bounded arguments from their stored JSON (`parsed`, when the caller has it, saves a parse). */
export function summarizeArguments(json: string, parsed?: unknown, limit = SUMMARY_ARGUMENTS_BYTES): ArgumentsSummary {
  const argumentsBytes = Buffer.byteLength(json);
  if (argumentsBytes <= limit) return { arguments: parsed === undefined ? JSON.parse(json) : parsed, argumentsBytes, argumentsTruncated: false };
  const value = parsed === undefined ? JSON.parse(json) : parsed;
  for (let cap = Math.floor(limit / 2); cap >= 16; cap = Math.floor(cap / 2)) {
    const shortened = shortenValue(value, cap).value;
    if (Buffer.byteLength(JSON.stringify(shortened)) <= limit) return { arguments: shortened, argumentsBytes, argumentsTruncated: true };
  }
  // Too many values to keep the shape: the head and tail of the JSON text (at most 4 bytes a character).
  const side = Math.floor(limit / 8);
  return { arguments: `${json.slice(0, side)}${ELLIPSIS}${json.slice(json.length - side)}`, argumentsBytes, argumentsTruncated: true };
}

/** A full view made into a summary; a result too large for a push frame is left to GET /api/approvals/{id}. */
export function summarizeView(view: ApprovalView, args: ArgumentsSummary = summarizeArguments(JSON.stringify(view.arguments), view.arguments)): ApprovalSummary {
  const result = view.result === null || Buffer.byteLength(JSON.stringify(view.result)) <= SUMMARY_ARGUMENTS_BYTES ? view.result : null;
  return { ...view, ...args, result };
}
