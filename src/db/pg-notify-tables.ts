import { and, asc, desc, eq, inArray, lt, lte, ne, notExists, or, sql, type SQL } from 'drizzle-orm';
import type { ApprovalRecord, Sensitivity } from '../approvals/approval.js';
import { attemptChanges, type AttemptOutcome, type DeliveryFilter, type DeliveryRecord, type DeliveryStatus, type NewDelivery, type NotifyStore, type SlackLinkRecord } from '../notify/notify-store.js';
import { approvalRequests, notifyDeliveries, notifyEscalations, slackLinks } from './pg-schema.js';
import type { PgQueries } from './pg-tables.js';

/** count(*) is a bigint, which postgres.js reads as a string. */
const count = sql<number>`count(*)`.mapWith(Number);

/**
 * The outbox, escalation markers and Slack links on PostgreSQL. A claim selects its rows
 * `FOR UPDATE SKIP LOCKED` and moves them on in the same transaction: instances claiming at once
 * take different rows, and none waits for another's claim.
 */
export class PgNotifyTables implements NotifyStore {
  constructor(private readonly db: PgQueries) {}

  async insertDeliveries(rows: readonly NewDelivery[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.insert(notifyDeliveries).values(rows.map((r) => ({ ...r, status: 'pending' as const, attempts: 0, nextAttemptAt: r.createdAt })));
  }

  async claimDeliveries(c: { receiver: string; now: number; leaseUntil: number; instanceId: string; limit: number }): Promise<DeliveryRecord[]> {
    const due = await this.db
      .select({ seq: notifyDeliveries.seq })
      .from(notifyDeliveries)
      .where(and(eq(notifyDeliveries.receiver, c.receiver), eq(notifyDeliveries.status, 'pending'), lte(notifyDeliveries.nextAttemptAt, c.now), noEarlierPending()))
      .orderBy(asc(notifyDeliveries.nextAttemptAt), asc(notifyDeliveries.seq))
      .limit(c.limit)
      .for('update', { skipLocked: true });
    if (due.length === 0) return [];
    const claimed = await this.db
      .update(notifyDeliveries)
      .set({ attempts: sql`${notifyDeliveries.attempts} + 1`, nextAttemptAt: c.leaseUntil, lastAttemptAt: c.now, claimedBy: c.instanceId })
      .where(inArray(notifyDeliveries.seq, due.map((d) => d.seq)))
      .returning();
    return claimed.sort((a, b) => a.seq - b.seq);
  }

  async finishAttempt(id: string, attempt: number, o: AttemptOutcome): Promise<DeliveryRecord | undefined> {
    const [row] = await this.db
      .update(notifyDeliveries)
      .set(attemptChanges(o))
      .where(and(eq(notifyDeliveries.id, id), eq(notifyDeliveries.attempts, attempt), eq(notifyDeliveries.status, 'pending')))
      .returning();
    return row;
  }

  async deliveries(f: DeliveryFilter): Promise<DeliveryRecord[]> {
    return this.db
      .select()
      .from(notifyDeliveries)
      .where(and(f.status ? eq(notifyDeliveries.status, f.status) : undefined, f.receiver ? eq(notifyDeliveries.receiver, f.receiver) : undefined, f.requestId ? eq(notifyDeliveries.requestId, f.requestId) : undefined))
      .orderBy(desc(notifyDeliveries.seq))
      .limit(f.limit);
  }

  async deliveryCounts(): Promise<{ receiver: string; status: DeliveryStatus; count: number }[]> {
    return this.db
      .select({ receiver: notifyDeliveries.receiver, status: notifyDeliveries.status, count })
      .from(notifyDeliveries)
      .groupBy(notifyDeliveries.receiver, notifyDeliveries.status);
  }

  async deliveredResponse(receiver: string, requestId: string, eventType: string): Promise<string | null> {
    const [row] = await this.db
      .select({ response: notifyDeliveries.response })
      .from(notifyDeliveries)
      .where(and(eq(notifyDeliveries.requestId, requestId), eq(notifyDeliveries.receiver, receiver), eq(notifyDeliveries.eventType, eventType), eq(notifyDeliveries.status, 'delivered')))
      .orderBy(asc(notifyDeliveries.seq))
      .limit(1);
    return row?.response ?? null;
  }

  async dueForEscalation(sensitivity: Sensitivity, requestedBy: number, limit: number): Promise<ApprovalRecord[]> {
    return this.db
      .select()
      .from(approvalRequests)
      .where(
        and(
          eq(approvalRequests.status, 'pending'),
          eq(approvalRequests.sensitivity, sensitivity),
          lte(approvalRequests.requestedAt, requestedBy),
          notExists(this.db.select({ one: sql`1` }).from(notifyEscalations).where(eq(notifyEscalations.requestId, approvalRequests.id))),
        ),
      )
      .orderBy(asc(approvalRequests.requestedAt))
      .limit(limit);
  }

  async markEscalated(requestId: string, now: number): Promise<boolean> {
    const rows = await this.db.insert(notifyEscalations).values({ requestId, escalatedAt: now }).onConflictDoNothing().returning({ requestId: notifyEscalations.requestId });
    return rows.length === 1;
  }

  async slackLinkOf(slackUserId: string): Promise<SlackLinkRecord | undefined> {
    const [row] = await this.db.select().from(slackLinks).where(eq(slackLinks.slackUserId, slackUserId));
    return row;
  }

  async slackLinks(): Promise<SlackLinkRecord[]> {
    return this.db.select().from(slackLinks).orderBy(asc(slackLinks.userId));
  }

  async linkSlack(row: SlackLinkRecord): Promise<void> {
    await this.db.delete(slackLinks).where(or(eq(slackLinks.userId, row.userId), eq(slackLinks.slackUserId, row.slackUserId)));
    await this.db.insert(slackLinks).values(row);
  }

  async unlinkSlack(userId: string): Promise<string | undefined> {
    const [row] = await this.db.delete(slackLinks).where(eq(slackLinks.userId, userId)).returning();
    return row?.slackUserId;
  }

  async deleteFinishedDeliveriesBefore(cutoff: number, limit = 1000): Promise<number> {
    const old = this.db
      .select({ seq: notifyDeliveries.seq })
      .from(notifyDeliveries)
      .where(and(lt(notifyDeliveries.createdAt, cutoff), ne(notifyDeliveries.status, 'pending')))
      .limit(limit);
    const deleted = await this.db.delete(notifyDeliveries).where(inArray(notifyDeliveries.seq, old)).returning({ seq: notifyDeliveries.seq });
    return deleted.length;
  }
}

/** No earlier delivery of the same request to the same receiver is still pending. */
function noEarlierPending(): SQL {
  return sql`not exists (select 1 from notify_deliveries as earlier where earlier.receiver = ${notifyDeliveries.receiver} and earlier.request_id = ${notifyDeliveries.requestId} and earlier.status = 'pending' and earlier.seq < ${notifyDeliveries.seq})`;
}
