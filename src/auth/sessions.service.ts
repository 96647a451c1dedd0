import type { AuditLog } from '../audit/audit.service.js';
import type { Persistence } from '../core/persistence.js';
import { AppError } from '../core/errors.js';
import type { Principal } from '../policy/policy.service.js';
import type { AuthService } from './auth.service.js';
import type { SessionRecord } from './identity-store.js';
import { generateSessionSecret, hashToken } from './tokens.js';

/** The cookie that carries a console session's secret. */
export const SESSION_COOKIE = 'toolgate_session';
export const DEFAULT_SESSION_TTL_MS = 12 * 60 * 60 * 1000;

export interface ConsoleSessionsDeps {
  store: Persistence;
  auth: AuthService;
  audit: AuditLog;
  clock: { now(): number };
  ids: { uuid(): string };
  ttlMs: number;
  /** Whether a role may sign in to the console (approval.view). */
  mayHoldSession: (role: string) => boolean;
  /** Called after a session ends in this process, so that its sockets close at once. */
  onEnded?: (userId: string) => void | Promise<void>;
}

export interface SignedIn {
  /** The secret for the cookie; shown to nobody else and stored only as its hash. */
  secret: string;
  session: SessionRecord;
  principal: Principal;
}

/**
 * Web console sessions: an approver's API token is exchanged once for a random session secret
 * that the browser keeps in an HttpOnly cookie, so the token itself never lives in the page.
 * The session is read afresh on every use (AuthService.fromSession): revoking it, disabling its
 * user or taking approval.view from the role ends it on the next request and socket recheck.
 */
export class ConsoleSessions {
  constructor(private readonly deps: ConsoleSessionsDeps) {}

  async signIn(token: string, client: { address: string; userAgent: string }): Promise<SignedIn> {
    const { store, audit, clock, ids } = this.deps;
    const principal = await this.deps.auth.fromToken(token);
    if (!this.deps.mayHoldSession(principal.role)) throw new AppError('permission_denied', `the role "${principal.role}" may not use the console (it lacks approval.view)`);
    const secret = generateSessionSecret();
    const now = clock.now();
    const session: SessionRecord = {
      id: ids.uuid(),
      userId: principal.id,
      createdAt: now,
      expiresAt: now + this.deps.ttlMs,
      revokedAt: null,
      address: client.address.slice(0, 64),
      userAgent: client.userAgent.slice(0, 200),
    };
    // Audit details name sessions by `id`/`ids`: a key with "session" in it is redacted as a secret, and the id is not one.
    await store.withTransaction(async (tx) => {
      await tx.identity.insertSession({ ...session, secretHash: hashToken(secret) });
      await audit.append(tx, { actor: principal.id, action: 'session.started', status: 'active', details: { id: session.id, user: principal.id, address: session.address, via: `token ${principal.tokenId}` } });
    });
    return { secret, session, principal: { ...principal, tokenId: undefined, sessionId: session.id } };
  }

  /** Ends the session the secret belongs to (sign-out); false when it had already ended. */
  async signOut(principal: Principal): Promise<boolean> {
    if (!principal.sessionId) return false;
    return (await this.end(principal.id, principal.sessionId, 'signed out')) !== undefined;
  }

  /** Revokes a session by id (`toolgate sessions revoke`, an admin). */
  async revoke(actor: string, id: string): Promise<SessionRecord> {
    const ended = await this.end(actor, id, 'revoked');
    if (!ended) throw new AppError('not_found', `no live session "${id}"`);
    return ended;
  }

  /** Revokes every live session of a user; returns their ids. */
  async revokeAllOf(actor: string, userId: string): Promise<string[]> {
    const { store, audit, clock } = this.deps;
    const ended = await store.withTransaction(async (tx) => {
      const ids = await tx.identity.revokeSessionsOf(userId, clock.now());
      if (ids.length > 0) await audit.append(tx, { actor, action: 'session.revoked', status: 'revoked', details: { user: userId, ids } });
      return ids;
    });
    if (ended.length > 0) await this.deps.onEnded?.(userId);
    return ended;
  }

  list(userId?: string): Promise<SessionRecord[]> {
    return this.deps.store.identity.liveSessions(this.deps.clock.now(), userId);
  }

  private async end(actor: string, id: string, how: 'signed out' | 'revoked'): Promise<SessionRecord | undefined> {
    const { store, audit, clock } = this.deps;
    const ended = await store.withTransaction(async (tx) => {
      const row = await tx.identity.revokeSession(id, clock.now());
      if (row) await audit.append(tx, { actor, action: how === 'signed out' ? 'session.ended' : 'session.revoked', status: 'revoked', details: { id, user: row.userId } });
      return row;
    });
    if (ended) await this.deps.onEnded?.(ended.userId);
    return ended;
  }
}
