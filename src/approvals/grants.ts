import canonicalize from 'canonicalize';
import { AppError } from '../core/errors.js';
import type { Sensitivity } from './approval.js';
import type { GrantView } from './approval.schemas.js';
import { globMatches } from '../policy/glob.js';

/*
 * Standing approvals (grants): the rules, with no I/O. An approver approves a request and, in the
 * same act, allows the same call again for the same requester for a bounded time and number of
 * calls. By default only the exact same arguments ("exact"); broadened explicitly either with
 * constraints on argument values ("match": equality, a path prefix or a glob per key, every other
 * argument equal) or to any arguments of the tool ("any").
 */

export type MatcherKind = 'eq' | 'prefix' | 'glob';
export interface ArgumentMatcher {
  kind: MatcherKind;
  value: string;
}
export type GrantScope = 'exact' | 'match' | 'any';

/** What one approver asked for, validated: the bounds they gave (if any) and the scope. */
export interface GrantTerms {
  forMs?: number | undefined;
  times?: number | undefined;
  scope: GrantScope;
  match?: Record<string, ArgumentMatcher> | undefined;
}

/** The grant as channels ask for it: `for` ("15m", "2h", or seconds), `times`, `match` (key → pattern), `anyArgs`. */
export interface GrantRequest {
  for?: string | number | undefined;
  times?: number | undefined;
  match?: Record<string, string> | undefined;
  anyArgs?: boolean | undefined;
}

/** The most a grant may allow, per sensitivity; null: not eligible at all. */
export type GrantCaps = Record<'HIGH' | 'CRITICAL', { maxMs: number; maxUses: number } | null>;

/** A stored grant, as the rules read it. */
export interface ApprovalGrant {
  id: string;
  requestId: string;
  tool: string;
  requesterId: string;
  sensitivity: Sensitivity;
  scope: GrantScope;
  /** The approved arguments, canonical JSON. */
  arguments: string;
  /** JSON `{key: ArgumentMatcher}`. */
  matchers: string;
  /** JSON array of approver ids. */
  approvers: string;
  createdAt: number;
  expiresAt: number;
  usesLeft: number | null;
  maxUses: number | null;
  uses: number;
  revokedAt: number | null;
  revokedBy: string | null;
  revokeReason: string | null;
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "15m", "2h", "90s", "1d" or a number of seconds, in milliseconds. */
export function parseDuration(value: string | number): number {
  const m = DURATION.exec(String(value).trim());
  const ms = m ? Number(m[1]) * UNIT_MS[(m[2] ?? 's') as keyof typeof UNIT_MS] : NaN;
  if (!Number.isFinite(ms) || ms <= 0) throw new AppError('validation_failed', `grant duration "${String(value).slice(0, 40)}" is not a duration such as 90s, 15m, 2h or 1d`);
  return Math.round(ms);
}

/** `value` (equality), `prefix/**` (a path prefix), or a glob with `*` and `?`. */
export function parseMatcher(pattern: string): ArgumentMatcher {
  if (pattern.endsWith('/**') && !/[*?]/.test(pattern.slice(0, -3))) return { kind: 'prefix', value: pattern.slice(0, -2) };
  if (/[*?]/.test(pattern)) return { kind: 'glob', value: pattern };
  return { kind: 'eq', value: pattern };
}

/** Validates what an approver asked for (the bounds are checked against the caps later, knowing the sensitivity). */
export function termsOf(request: GrantRequest): GrantTerms {
  const match = request.match && Object.keys(request.match).length > 0 ? request.match : undefined;
  if (request.anyArgs && match) throw new AppError('validation_failed', 'a grant is either --any-args or --match, not both');
  if (request.for === undefined && request.times === undefined) throw new AppError('validation_failed', 'a grant needs a bound: --for DURATION and/or --times N');
  if (request.times !== undefined && (!Number.isInteger(request.times) || request.times < 1)) throw new AppError('validation_failed', 'grant times must be a whole number of 1 or more');
  const matchers = match ? Object.fromEntries(Object.entries(match).map(([key, pattern]) => [key, parseMatcher(pattern)])) : undefined;
  return {
    forMs: request.for === undefined ? undefined : parseDuration(request.for),
    times: request.times,
    scope: request.anyArgs ? 'any' : matchers ? 'match' : 'exact',
    ...(matchers ? { match: matchers } : {}),
  };
}

/** Throws `grant_not_allowed` when these terms may not be granted for a call of this sensitivity with these arguments. */
export function assertGrantable(terms: GrantTerms, sensitivity: Sensitivity, args: Record<string, unknown>, caps: GrantCaps): void {
  const cap = sensitivity === 'HIGH' || sensitivity === 'CRITICAL' ? caps[sensitivity] : null;
  if (!cap) {
    throw new AppError(
      'grant_not_allowed',
      sensitivity === 'CRITICAL'
        ? 'CRITICAL tools are never granted standing approval unless the operator allows it (GRANT_MAX_DURATION_CRITICAL)'
        : `${sensitivity} calls need no approval, so no standing approval either`,
    );
  }
  if (terms.forMs !== undefined && terms.forMs > cap.maxMs) throw new AppError('grant_not_allowed', `a ${sensitivity} grant may last at most ${Math.floor(cap.maxMs / 1000)} s (GRANT_MAX_DURATION_${sensitivity})`);
  if (terms.times !== undefined && terms.times > cap.maxUses) throw new AppError('grant_not_allowed', `a ${sensitivity} grant may allow at most ${cap.maxUses} calls (GRANT_MAX_USES_${sensitivity})`);
  for (const [key, matcher] of Object.entries(terms.match ?? {})) {
    const value = args[key];
    if (typeof value !== 'string') throw new AppError('grant_not_allowed', `--match ${key}: the request has no string argument "${key}" to constrain`);
    if (!valueMatches(matcher, value)) throw new AppError('grant_not_allowed', `--match ${key}: the approved value itself does not match ${describeMatcher(matcher)}`);
  }
}

/**
 * Quorum applies to granting: a grant is made only when the request is approved and every
 * approval that counted asked for one. Its terms are the most restrictive of theirs: the shortest
 * time, the fewest calls, and one scope: theirs if they all asked the same, else exact arguments.
 * Bounds nobody gave are the caps'.
 */
export function combineTerms(asked: readonly GrantTerms[], sensitivity: Sensitivity, caps: GrantCaps): { ms: number; uses: number; scope: GrantScope; match: Record<string, ArgumentMatcher> } | null {
  const cap = sensitivity === 'HIGH' || sensitivity === 'CRITICAL' ? caps[sensitivity] : null;
  if (!cap || asked.length === 0) return null;
  const ms = Math.min(cap.maxMs, ...asked.map((t) => t.forMs ?? cap.maxMs));
  const uses = Math.min(cap.maxUses, ...asked.map((t) => t.times ?? cap.maxUses));
  const scopes = new Set(asked.map((t) => `${t.scope} ${canonicalize(t.match ?? {})}`));
  const same = scopes.size === 1;
  return { ms, uses, scope: same ? asked[0]!.scope : 'exact', match: same ? (asked[0]!.match ?? {}) : {} };
}

/** Does the grant cover a call with these arguments? (Its tool, requester and liveness are the store's to check.) */
export function grantCovers(grant: Pick<ApprovalGrant, 'scope' | 'arguments' | 'matchers'>, args: Record<string, unknown>): boolean {
  if (grant.scope === 'any') return true;
  if (grant.scope === 'exact') return canonicalize(args) === grant.arguments;
  const approved = JSON.parse(grant.arguments) as Record<string, unknown>;
  const matchers = JSON.parse(grant.matchers) as Record<string, ArgumentMatcher>;
  const keys = Object.keys(approved);
  if (keys.length !== Object.keys(args).length || !keys.every((k) => Object.hasOwn(args, k))) return false;
  return keys.every((key) => {
    const matcher = matchers[key];
    if (!matcher) return canonicalize(args[key]) === canonicalize(approved[key]);
    const value = args[key];
    return typeof value === 'string' && valueMatches(matcher, value);
  });
}

/** A `..` path segment would walk out of any prefix or glob: such values never match one. */
const DOT_DOT = /(^|[/\\])\.\.([/\\]|$)/;

export function valueMatches(matcher: ArgumentMatcher, value: string): boolean {
  switch (matcher.kind) {
    case 'eq':
      return value === matcher.value;
    case 'prefix':
      return !DOT_DOT.test(value) && !value.includes('\0') && value.startsWith(matcher.value);
    case 'glob':
      return !DOT_DOT.test(value) && !value.includes('\0') && globMatches(matcher.value, value);
  }
}

export function describeMatcher(m: ArgumentMatcher): string {
  return m.kind === 'eq' ? `= ${JSON.stringify(m.value)}` : m.kind === 'prefix' ? `under ${JSON.stringify(m.value)} (no ".." segments)` : `matching glob ${JSON.stringify(m.value)}`;
}

/** What a grant will allow, in words, for the approver to read before it applies. */
export function describeScope(scope: GrantScope, match: Record<string, ArgumentMatcher> | undefined): string {
  if (scope === 'any') return 'ANY arguments of this tool';
  if (scope === 'exact') return 'exactly these arguments';
  const constrained = Object.entries(match ?? {}).map(([k, m]) => `${k} ${describeMatcher(m)}`);
  return `${constrained.join(', ')}; every other argument exactly as approved`;
}

export type GrantState = 'active' | 'expired' | 'used_up' | 'revoked';

export function grantState(grant: Pick<ApprovalGrant, 'revokedAt' | 'expiresAt' | 'usesLeft'>, now: number): GrantState {
  if (grant.revokedAt !== null) return 'revoked';
  if (grant.expiresAt <= now) return 'expired';
  if (grant.usesLeft !== null && grant.usesLeft <= 0) return 'used_up';
  return 'active';
}

export function toGrantView(g: ApprovalGrant, now: number): GrantView {
  const match = JSON.parse(g.matchers) as Record<string, ArgumentMatcher>;
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: g.id,
    requestId: g.requestId,
    tool: g.tool,
    requester: g.requesterId,
    sensitivity: g.sensitivity,
    scope: g.scope,
    scopeText: describeScope(g.scope, match),
    arguments: JSON.parse(g.arguments),
    match,
    approvers: JSON.parse(g.approvers) as string[],
    createdAt: iso(g.createdAt),
    expiresAt: iso(g.expiresAt),
    usesLeft: g.usesLeft,
    maxUses: g.maxUses,
    uses: g.uses,
    state: grantState(g, now),
    revokedAt: g.revokedAt === null ? null : iso(g.revokedAt),
    revokedBy: g.revokedBy,
    revokeReason: g.revokeReason,
  };
}
