import type { GrantRequest } from '../src/approvals/grants.js';
import { describeScope, parseMatcher, termsOf } from '../src/approvals/grants.js';

/**
 * The standing-approval flags of `a <id> <reason>` (live session) and `approvals approve`:
 * `--for 15m`, `--times 10`, `--match key=value|prefix/**|glob` (repeatable), `--any-args`, `--yes`.
 */
export interface GrantFlags {
  grant?: GrantRequest | undefined;
  /** The approver confirmed a broadened scope up front. */
  yes: boolean;
}

/** Pulls the grant flags out of the words typed after `a <id>`; what remains is the reason. */
export function splitGrantFlags(words: string[]): { reason: string; flags: GrantFlags } {
  const rest: string[] = [];
  const grant: GrantRequest = {};
  let yes = false;
  let any = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const value = () => {
      const v = words[++i];
      if (v === undefined) throw new Error(`${w} needs a value`);
      return v;
    };
    if (w === '--for') grant.for = value();
    else if (w === '--times') grant.times = Number(value());
    else if (w === '--match') addMatch(grant, value());
    else if (w === '--any-args') any = grant.anyArgs = true;
    else if (w === '--yes' || w === '-y') yes = true;
    else rest.push(w);
  }
  const asked = grant.for !== undefined || grant.times !== undefined || grant.match !== undefined || any;
  return { reason: rest.join(' '), flags: { ...(asked ? { grant } : {}), yes } };
}

export function addMatch(grant: GrantRequest, pair: string) {
  const at = pair.indexOf('=');
  if (at <= 0) throw new Error(`--match takes key=value, key=prefix/** or key=glob (got "${pair}")`);
  grant.match = { ...grant.match, [pair.slice(0, at)]: pair.slice(at + 1) };
}

/** Is the grant broader than the exact arguments (the approver must confirm it)? */
export function broadened(grant: GrantRequest): boolean {
  return grant.anyArgs === true || Object.keys(grant.match ?? {}).length > 0;
}

/** What the grant will allow, in words, before it is sent. Throws the validation error of a bad one. */
export function grantPreview(grant: GrantRequest): string {
  const terms = termsOf(grant);
  const bounds = [terms.forMs !== undefined ? `for ${grant.for}` : 'for the longest the caps allow', terms.times !== undefined ? `at most ${terms.times} calls` : 'as many calls as the caps allow'];
  const match = terms.match ?? Object.fromEntries(Object.entries(grant.match ?? {}).map(([k, v]) => [k, parseMatcher(v)]));
  return `standing approval: the same tool for the same requester, ${bounds.join(', ')}, with ${describeScope(terms.scope, match)}`;
}
