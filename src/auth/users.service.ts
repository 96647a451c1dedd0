import { cancelInTransaction, REQUESTER_DISABLED, revokeGrantsOf, TOKEN_REVOKED } from '../approvals/revocation.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { Persistence, Transaction } from '../core/persistence.js';
import { seedInTransaction, type IssuedToken } from '../db/seed.js';
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
  store: Persistence;
  audit: AuditLog;
  clock: { now(): number };
  onChanged?: (change: IdentityChange) => void | Promise<void>;
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
  async add(actor: string, id: string, role: string): Promise<string> {
    const { store, audit, clock } = this.deps;
    if (!USER_ID.test(id)) throw new AppError('validation_failed', 'user ids are 1-64 letters, digits, . _ @ -');
    return store.withTransaction(async (tx) => {
      const roles = await tx.policy.roleNames();
      if (!roles.includes(role)) throw new AppError('validation_failed', `unknown role "${role}" (known: ${roles.join(', ')})`);
      if (await tx.identity.user(id)) throw new AppError('validation_failed', `user "${id}" already exists; use \`toolgate users token ${id}\` for a new token`);
      const now = clock.now();
      await tx.identity.insertUser({ id, role, now });
      await audit.append(tx, { actor, action: 'user.added', status: 'active', details: { user: id, role } });
      return this.issueInTransaction(tx, actor, id, now);
    });
  }

  /** A new token for a user; with `revokeOthers`, their live tokens are revoked first and the requests those made are cancelled. */
  async issueToken(actor: string, id: string, options: { revokeOthers?: boolean } = {}): Promise<string> {
    const { store, clock } = this.deps;
    const cancelled: string[] = [];
    const token = await store.withTransaction(async (tx) => {
      if (!(await tx.identity.user(id))) throw new AppError('not_found', `no user "${id}"`);
      const now = clock.now();
      if (options.revokeOthers) cancelled.push(...(await this.revokeInTransaction(tx, actor, id, await tx.identity.revokeTokens(id, now))));
      return this.issueInTransaction(tx, actor, id, now);
    });
    await this.deps.onChanged?.({ userId: id, cancelled });
    return token;
  }

  async disable(actor: string, id: string): Promise<{ cancelled: number }> {
    const { store, audit, clock } = this.deps;
    const cancelled = await store.withTransaction(async (tx) => {
      if (!(await tx.identity.setUserActive(id, false, clock.now()))) throw new AppError('not_found', `no user "${id}"`);
      await audit.append(tx, { actor, action: 'user.disabled', status: 'disabled', details: { user: id } });
      await this.endSessions(tx, actor, id, 'user disabled');
      await revokeGrantsOf(tx, this.deps, id, actor, `user ${id} disabled`);
      return this.cancelPending(tx, actor, await tx.approvals.pendingOf({ requesterId: id }), REQUESTER_DISABLED);
    });
    await this.deps.onChanged?.({ userId: id, cancelled });
    return { cancelled: cancelled.length };
  }

  async enable(actor: string, id: string): Promise<void> {
    const { store, audit, clock } = this.deps;
    await store.withTransaction(async (tx) => {
      if (!(await tx.identity.setUserActive(id, true, clock.now()))) throw new AppError('not_found', `no user "${id}"`);
      await audit.append(tx, { actor, action: 'user.enabled', status: 'active', details: { user: id } });
    });
    await this.deps.onChanged?.({ userId: id, cancelled: [] });
  }

  /**
   * Seeds roles, the catalog and the three users. `reset` deletes every user and token first, so
   * every token is revoked: the pending requests they made are cancelled.
   */
  async seed(actor: string, options: { reset?: boolean } = {}): Promise<IssuedToken[]> {
    const { store, audit, clock } = this.deps;
    const cancelled: string[] = [];
    const issued = await store.withTransaction(async (tx) => {
      if (options.reset) {
        const tokenIds = await tx.identity.tokenIds();
        if (tokenIds.length > 0) await audit.append(tx, { actor, action: 'token.revoked', status: 'revoked', details: { ids: tokenIds, reason: 'db seed --reset' } });
        cancelled.push(...(await this.cancelPending(tx, actor, await tx.approvals.pendingOf({ tokenIds }), TOKEN_REVOKED)));
      }
      const tokens = await seedInTransaction(tx, { reset: options.reset ?? false, now: clock.now() });
      await audit.append(tx, { actor, action: 'db.seeded', details: { reset: options.reset ?? false, users: tokens.map((t) => t.user) } });
      return tokens;
    });
    await this.deps.onChanged?.({ cancelled });
    return issued;
  }

  private async issueInTransaction(tx: Transaction, actor: string, userId: string, now: number): Promise<string> {
    const token = generateToken();
    const tokenId = await tx.identity.insertToken({ userId, tokenHash: hashToken(token), prefix: tokenPrefix(token), now });
    // The token's id only: neither the token nor its hash goes into the audit log.
    await this.deps.audit.append(tx, { actor, action: 'token.issued', status: 'active', details: { user: userId, id: tokenId } });
    return token;
  }

  private async revokeInTransaction(tx: Transaction, actor: string, userId: string, tokenIds: number[]): Promise<string[]> {
    if (tokenIds.length === 0) return [];
    await this.deps.audit.append(tx, { actor, action: 'token.revoked', status: 'revoked', details: { user: userId, ids: tokenIds } });
    // A console session was signed in with one of these tokens, perhaps a leaked one: they end too.
    await this.endSessions(tx, actor, userId, 'tokens revoked');
    return this.cancelPending(tx, actor, await tx.approvals.pendingOf({ tokenIds }), TOKEN_REVOKED);
  }

  /** Revokes every console session of a user, writing one `session.revoked` event when there were any. */
  private async endSessions(tx: Transaction, actor: string, userId: string, reason: string) {
    const ended = await tx.identity.revokeSessionsOf(userId, this.deps.clock.now());
    if (ended.length > 0) await this.deps.audit.append(tx, { actor, action: 'session.revoked', status: 'revoked', details: { user: userId, ids: ended, reason } });
  }

  private async cancelPending(tx: Transaction, actor: string, rows: { id: string; tool: string }[], reason: string): Promise<string[]> {
    const cancelled: string[] = [];
    for (const row of rows) if (await cancelInTransaction(tx, this.deps, row, actor, reason)) cancelled.push(row.id);
    return cancelled;
  }
}
