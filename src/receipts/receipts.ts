import { createLocalJWKSet, errors, exportJWK, jwtVerify, SignJWT, type JSONWebKeySet, type JWK } from 'jose';
import { callHash } from '../approvals/binding.js';
import type { KeyRing } from '../signing/key-ring.js';

/**
 * Signed receipts: what an approved request proves to whoever runs the tool. A receipt is a
 * compact JWS (a JWT, `alg: EdDSA`, `typ: toolgate-receipt+jwt`) signed with the gateway's current
 * key, and verifiable offline against `/.well-known/jwks.json`. docs/receipts.md is its reference.
 */

export const RECEIPT_TYP = 'toolgate-receipt+jwt';

export interface ReceiptClaims {
  iss: string;
  /** The request id. */
  jti: string;
  /** The requester's user id. */
  sub: string;
  tool: string;
  /** SHA-256 (hex) of the canonical call: tool, arguments, requester, policy version. */
  call_hash: string;
  policy_version: string;
  /** Who approved it, in the order they did; empty when it needed no approval. */
  approvers: string[];
  /** The standing approval (grant) that allowed it without asking, if one did. */
  grant?: string;
  /** The verdict time and the expiry, in seconds since the epoch. */
  iat: number;
  exp: number;
}

/** What a receipt is issued for: an approved request with its binding. */
export interface ReceiptSubject {
  id: string;
  tool: string;
  requesterId: string;
  callHash: string;
  policyVersion: string;
  decidedAt: number;
  approvers: readonly string[];
  grantId?: string | null | undefined;
}

export interface ReceiptSettings {
  /** How long a receipt is valid after the verdict. */
  lifetimeMs: number;
  /** The `iss` claim: the gateway's PUBLIC_URL, or `toolgate`. */
  issuer: string;
}

const CACHE_SIZE = 1000;

/** Issues receipts with the ring's current key and publishes the ring's live public keys. */
export class ReceiptSigner {
  /** Receipts already signed, by request: a receipt never changes while its key signs. */
  private readonly issued = new Map<string, { keyId: string; jws: string }>();

  constructor(
    private readonly keys: KeyRing,
    readonly settings: ReceiptSettings,
  ) {}

  async issue(subject: ReceiptSubject): Promise<string> {
    const key = this.keys.current();
    const cached = this.issued.get(subject.id);
    if (cached?.keyId === key.keyId) return cached.jws;
    const iat = Math.floor(subject.decidedAt / 1000);
    const claims: Omit<ReceiptClaims, 'iss' | 'jti' | 'sub' | 'iat' | 'exp'> = {
      tool: subject.tool,
      call_hash: subject.callHash,
      policy_version: subject.policyVersion,
      approvers: [...subject.approvers],
      ...(subject.grantId ? { grant: subject.grantId } : {}),
    };
    const jws = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', kid: key.keyId, typ: RECEIPT_TYP })
      .setIssuer(this.settings.issuer)
      .setJti(subject.id)
      .setSubject(subject.requesterId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + Math.ceil(this.settings.lifetimeMs / 1000))
      .sign(key.privateKey!);
    this.issued.set(subject.id, { keyId: key.keyId, jws });
    if (this.issued.size > CACHE_SIZE) this.issued.delete(this.issued.keys().next().value!);
    return jws;
  }

  /** The JWKS document: the signing key and retired keys whose receipts may still be unexpired. */
  async jwks(): Promise<JSONWebKeySet> {
    // A receipt's expiry is rounded up to the second: a minute's margin keeps its key published past it.
    const keys = this.keys.published(this.settings.lifetimeMs + 60_000);
    return { keys: await Promise.all(keys.map(async (k): Promise<JWK> => ({ ...(await exportJWK(k.publicKey)), kid: k.keyId, alg: 'EdDSA', use: 'sig' }))) };
  }
}

export type ReceiptCheck =
  | { ok: true; claims: ReceiptClaims; keyId: string }
  | { ok: false; reason: 'malformed' | 'unknown_key' | 'bad_signature' | 'expired' | 'arguments_mismatch'; message: string; claims?: ReceiptClaims };

/**
 * Checks a receipt offline: its signature against `jwks`, its expiry, and, given `args`, that
 * they are the arguments it was issued for (the canonical hash recomputed from them).
 */
export async function verifyReceipt(jws: string, jwks: JSONWebKeySet, options: { arguments?: unknown; now?: Date } = {}): Promise<ReceiptCheck> {
  let claims: ReceiptClaims;
  let keyId: string;
  try {
    const verified = await jwtVerify<ReceiptClaims>(jws.trim(), createLocalJWKSet(jwks), {
      algorithms: ['EdDSA'],
      typ: RECEIPT_TYP,
      requiredClaims: ['jti', 'sub', 'exp', 'iat'],
      ...(options.now ? { currentDate: options.now } : {}),
    });
    claims = verified.payload as ReceiptClaims;
    keyId = verified.protectedHeader.kid ?? '';
  } catch (err) {
    if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired', message: `the receipt expired at ${new Date(Number(err.payload.exp) * 1000).toISOString()}`, claims: err.payload as unknown as ReceiptClaims };
    if (err instanceof errors.JWKSNoMatchingKey) return { ok: false, reason: 'unknown_key', message: 'no key in the JWKS matches the receipt\'s kid (another gateway\'s key, or one retired long ago)' };
    if (err instanceof errors.JWSSignatureVerificationFailed) return { ok: false, reason: 'bad_signature', message: 'the signature does not verify: the receipt was altered or signed with another key' };
    return { ok: false, reason: 'malformed', message: `not a toolgate receipt: ${(err as Error).message}` };
  }
  if (typeof claims.tool !== 'string' || typeof claims.call_hash !== 'string' || typeof claims.policy_version !== 'string' || !Array.isArray(claims.approvers)) {
    return { ok: false, reason: 'malformed', message: 'the receipt lacks tool, call_hash, policy_version or approvers' };
  }
  if (options.arguments !== undefined) {
    const actual = callHash({ tool: claims.tool, arguments: options.arguments, requester: claims.sub, policyVersion: claims.policy_version });
    if (actual !== claims.call_hash) {
      return { ok: false, reason: 'arguments_mismatch', message: `these arguments are not the ones approved (their call hash is ${actual}, the receipt's ${claims.call_hash})`, claims };
    }
  }
  return { ok: true, claims, keyId };
}
