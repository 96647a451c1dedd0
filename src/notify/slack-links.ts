import type { AuditLog } from '../audit/audit.service.js';
import { AppError } from '../core/errors.js';
import type { Persistence } from '../core/persistence.js';

/** A Slack user id: U… or W… (Enterprise Grid), upper-case letters and digits. */
export const SLACK_USER_ID = /^[UW][A-Z0-9]{2,30}$/;

/**
 * Which Slack user is which toolgate user: a button pressed in Slack decides as the linked user,
 * with that user's role and standing read at the press (a disabled user's link decides nothing).
 * Each change is audited.
 */
export class SlackLinks {
  constructor(private readonly deps: { store: Persistence; audit: AuditLog; clock: { now(): number } }) {}

  async link(actor: string, userId: string, slackUserId: string): Promise<void> {
    if (!SLACK_USER_ID.test(slackUserId)) throw new AppError('validation_failed', `"${slackUserId.slice(0, 64)}" is not a Slack user id (U… or W…, as in the member's profile: ⋮ → Copy member ID)`);
    await this.deps.store.withTransaction(async (tx) => {
      if (!(await tx.identity.user(userId))) throw new AppError('not_found', `no user ${userId}`);
      const before = await tx.notify.slackLinkOf(slackUserId);
      await tx.notify.linkSlack({ slackUserId, userId, createdAt: this.deps.clock.now() });
      await this.deps.audit.append(tx, {
        actor,
        action: 'user.slack_linked',
        status: 'active',
        details: { user: userId, slackUser: slackUserId, ...(before && before.userId !== userId ? { takenFrom: before.userId } : {}) },
      });
    });
  }

  /** Removes a user's link; false when they had none. */
  async unlink(actor: string, userId: string): Promise<boolean> {
    return this.deps.store.withTransaction(async (tx) => {
      const slackUserId = await tx.notify.unlinkSlack(userId);
      if (slackUserId === undefined) return false;
      await this.deps.audit.append(tx, { actor, action: 'user.slack_unlinked', status: 'revoked', details: { user: userId, slackUser: slackUserId } });
      return true;
    });
  }
}
