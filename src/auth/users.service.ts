import { cancelInTransaction, REQUESTER_DISABLED, TOKEN_REVOKED } from '../approvals/revocation.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { Store } from '../db/store.js';
import { seedDatabase, type IssuedToken } from '../db/seed.js';
import { AppError } from '../core/errors.js';
import { generateToken, hashToken, tokenPrefix } from './tokens.js';

export const USER_ID = /^[A-Za-z0-9._@-]{1,64}$/;

/** What a committed change did, for the process that made it (the gateway wakes callers and re-checks sockets). */
export interface IdentityChange {
  userId?: string | undefined;
  /** Requests cancelled because the power that made them was withdrawn. */
  cancelled: string[];
}

export interface UserAdminDeps {
  store: Store;
  audit: AuditLog;
  clock: { now(): number };
  onChanged?: (change: IdentityChange) => void;
}

/**
 * Users and tokens, and the one rule that withdrawing power takes effect at once: disabling a
 * user or revoking tokens cancels the pending requests they made, in the same transaction,
 * with the usual `approval.cancelled` events. Every change writes its own audit event (never a
 * token or its hash). Gateways in other processes learn of it from those events.
 */
export class UserAdmin {
  constructor(private readonly deps: UserAdminDeps) {}

  /** Creates a user with a first token; returns the token (shown once). */
  add(actor: string, id: string, role: string): string {
    const { store, audit, clock } = this.deps;
    if (!USER_ID.test(id)) throw new AppError('validation_failed', 'user ids are 1-64 letters, digits, . _ @ -');
    return store.transaction(() => {
      const roles = store.roleNames();
      if (!roles.includes(role)) throw new AppError('validation_failed', `unknown role "${role}" (known: ${roles.join(', ')})`);
      if (store.user(id)) throw new AppError('validation_failed', `user "${id}" already exists; use \`toolgate users token ${id}\` for a new token`);
      const now = clock.now();
      store.insertUser({ id, role, now });
      audit.append({ actor, action: 'user.added', status: 'active', details: { user: id, role } });
      return this.issueInTransaction(actor, id, now);
    });
  }

  /** A new token for a user; with `revokeOthers`, their live tokens are revoked first and the requests those made are cancelled. */
  issueToken(actor: string, id: string, options: { revokeOthers?: boolean } = {}): string {
    const { store, clock } = this.deps;
    const cancelled: string[] = [];
    const token = store.transaction(() => {
      if (!store.user(id)) throw new AppError('not_found', `no user "${id}"`);
      const now = clock.now();
      if (options.revokeOthers) cancelled.push(...this.revokeInTransaction(actor, id, store.revokeTokens(id, now)));
      return this.issueInTransaction(actor, id, now);
    });
    this.deps.onChanged?.({ userId: id, cancelled });
    return token;
  }

  disable(actor: string, id: string): { cancelled: number } {
    const { store, audit, clock } = this.deps;
    const cancelled = store.transaction(() => {
      if (!store.setUserActive(id, false, clock.now())) throw new AppError('not_found', `no user "${id}"`);
      audit.append({ actor, action: 'user.disabled', status: 'disabled', details: { user: id } });
      return this.cancelPending(actor, store.pendingOf({ requesterId: id }), REQUESTER_DISABLED);
    });
    this.deps.onChanged?.({ userId: id, cancelled });
    return { cancelled: cancelled.length };
  }

  enable(actor: string, id: string) {
    const { store, audit, clock } = this.deps;
    store.transaction(() => {
      if (!store.setUserActive(id, true, clock.now())) throw new AppError('not_found', `no user "${id}"`);
      audit.append({ actor, action: 'user.enabled', status: 'active', details: { user: id } });
    });
    this.deps.onChanged?.({ userId: id, cancelled: [] });
  }

  /**
   * Seeds roles, the catalog and the three users. `reset` deletes every user and token first, so
   * every token is revoked: the pending requests they made are cancelled.
   */
  seed(actor: string, options: { reset?: boolean } = {}): IssuedToken[] {
    const { store, audit, clock } = this.deps;
    const cancelled: string[] = [];
    const issued = store.transaction(() => {
      if (options.reset) {
        const tokenIds = store.tokenIds();
        if (tokenIds.length > 0) audit.append({ actor, action: 'token.revoked', status: 'revoked', details: { ids: tokenIds, reason: 'db seed --reset' } });
        cancelled.push(...this.cancelPending(actor, store.pendingOf({ tokenIds }), TOKEN_REVOKED));
      }
      const tokens = seedDatabase(store, { reset: options.reset ?? false, now: clock.now() });
      audit.append({ actor, action: 'db.seeded', details: { reset: options.reset ?? false, users: tokens.map((t) => t.user) } });
      return tokens;
    });
    this.deps.onChanged?.({ cancelled });
    return issued;
  }

  private issueInTransaction(actor: string, userId: string, now: number): string {
    const token = generateToken();
    const tokenId = this.deps.store.insertToken({ userId, tokenHash: hashToken(token), prefix: tokenPrefix(token), now });
    // The token's id only: neither the token nor its hash goes into the audit log.
    this.deps.audit.append({ actor, action: 'token.issued', status: 'active', details: { user: userId, id: tokenId } });
    return token;
  }

  private revokeInTransaction(actor: string, userId: string, tokenIds: number[]): string[] {
    if (tokenIds.length === 0) return [];
    this.deps.audit.append({ actor, action: 'token.revoked', status: 'revoked', details: { user: userId, ids: tokenIds } });
    return this.cancelPending(actor, this.deps.store.pendingOf({ tokenIds }), TOKEN_REVOKED);
  }

  private cancelPending(actor: string, rows: { id: string; tool: string }[], reason: string): string[] {
    return rows.filter((row) => cancelInTransaction(this.deps, row, actor, reason)).map((row) => row.id);
  }
}
