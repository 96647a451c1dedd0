import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * What an approval is bound to: the tool, its arguments, who asked and under which policy. Its
 * hash is the SHA-256 (hex) of the RFC 8785 canonical JSON of
 * `{"arguments","policyVersion","requester","tool"}`, so the same call always hashes the same,
 * whatever the order of its keys or the spelling of its numbers. The request stores it, the
 * approver is shown it, the receipt signs it, and the executor recomputes it from what it is
 * about to run.
 */
export interface BoundCall {
  tool: string;
  arguments: unknown;
  /** The requester's user id. */
  requester: string;
  /** The version of the effective policy the request was made under (PolicyService.version). */
  policyVersion: string;
}

export function canonicalCall(call: BoundCall): string {
  const text = canonicalize({ tool: call.tool, arguments: call.arguments, requester: call.requester, policyVersion: call.policyVersion });
  if (text === undefined) throw new Error('the call cannot be put in canonical form');
  return text;
}

export function callHash(call: BoundCall): string {
  return createHash('sha256').update(canonicalCall(call)).digest('hex');
}
