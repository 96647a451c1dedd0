import { and, asc, desc, eq, inArray, lt, lte, ne, notExists, or, sql, type SQL } from 'drizzle-orm';
import type { ApprovalRecord, Sensitivity } from '../approvals/approval.js';
import { attemptChanges, type AttemptOutcome, type DeliveryFilter, type DeliveryRecord, type DeliveryStatus, type NewDelivery, type NotifyStore, type SlackLinkRecord } from '../notify/notify-store.js';
import type { Db } from './client.js';
import { approvalRequests, notifyDeliveries, notifyEscalations, slackLinks } from './schema.js';

const count = sql<number>`count(*)`;

/**
 * The outbox, escalation markers and Slack links on one SQLite connection. Inside the store's
 * `BEGIN IMMEDIATE` a claim's read and update are one step for every process on the file.
 */
export class SqliteNotifyTables implements NotifyStore {
  constructor(private readonly db: Db) {}

  async insertDeliveries(rows: readonly NewDelivery[]): Promise<void> {
    if (rows.length === 0) return;
    this.db
      .insert(notifyDeliveries)
      .values(rows.map((r) => ({ ...r, status: 'pending' as const, attempts: 0, nextAttemptAt: r.createdAt })))
      .run();
  }

  async claimDeliveries(c: { receiver: string; now: number; leaseUntil: number; instanceId: string; limit: number }): Promise<DeliveryRecord[]> {
    const due = this.db
      .select({ seq: notifyDeliveries.seq })
      .from(notifyDeliveries)
      .where(and(eq(notifyDeliveries.receiver, c.receiver), eq(notifyDeliveries.status, 'pending'), lte(notifyDeliveries.nextAttemptAt, c.now), noEarlierPending()))
      .orderBy(asc(notifyDeliveries.seq))
      .limit(c.limit)
      .all();
    if (due.length === 0) return [];
    return this.db
      .update(notifyDeliveries)
      .set({ attempts: sql`${notifyDeliveries.attempts} + 1`, nextAttemptAt: c.leaseUntil, lastAttemptAt: c.now, claimedBy: c.instanceId })
      .where(inArray(notifyDeliveries.seq, due.map((d) => d.seq)))
      .returning()
      .all()
      .sort((a, b) => a.seq - b.seq);
  }

  async finishAttempt(id: string, attempt: number, o: AttemptOutcome): Promise<DeliveryRecord | undefined> {
    return this.db
      .update(notifyDeliveries)
      .set(attemptChanges(o))
      .where(and(eq(notifyDeliveries.id, id), eq(notifyDeliveries.attempts, attempt), eq(notifyDeliveries.status, 'pending')))
      .returning()
      .get();
  }

  async deliveries(f: DeliveryFilter): Promise<DeliveryRecord[]> {
    return this.db.select().from(notifyDeliveries).where(deliveryFilter(f)).orderBy(desc(notifyDeliveries.seq)).limit(f.limit).all();
  }

  async deliveryCounts(): Promise<{ receiver: string; status: DeliveryStatus; count: number }[]> {
    return this.db
      .select({ receiver: notifyDeliveries.receiver, status: notifyDeliveries.status, count })
      .from(notifyDeliveries)
      .groupBy(notifyDeliveries.receiver, notifyDeliveries.status)
      .all();
  }

  async deliveredResponse(receiver: string, requestId: string, eventType: string): Promise<string | null> {
    const row = this.db
      .select({ response: notifyDeliveries.response })
      .from(notifyDeliveries)
      .where(and(eq(notifyDeliveries.requestId, requestId), eq(notifyDeliveries.receiver, receiver), eq(notifyDeliveries.eventType, eventType), eq(notifyDeliveries.status, 'delivered')))
      .orderBy(asc(notifyDeliveries.seq))
      .limit(1)
      .get();
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
      .limit(limit)
      .all();
  }

  async markEscalated(requestId: string, now: number): Promise<boolean> {
    return this.db.insert(notifyEscalations).values({ requestId, escalatedAt: now }).onConflictDoNothing().run().changes === 1;
  }

  async slackLinkOf(slackUserId: string): Promise<SlackLinkRecord | undefined> {
    return this.db.select().from(slackLinks).where(eq(slackLinks.slackUserId, slackUserId)).get();
  }

  async slackLinks(): Promise<SlackLinkRecord[]> {
    return this.db.select().from(slackLinks).orderBy(asc(slackLinks.userId)).all();
  }

  async linkSlack(row: SlackLinkRecord): Promise<void> {
    this.db.delete(slackLinks).where(or(eq(slackLinks.userId, row.userId), eq(slackLinks.slackUserId, row.slackUserId))).run();
    this.db.insert(slackLinks).values(row).run();
  }

  async unlinkSlack(userId: string): Promise<string | undefined> {
    return this.db.delete(slackLinks).where(eq(slackLinks.userId, userId)).returning().get()?.slackUserId;
  }

  async deleteFinishedDeliveriesBefore(cutoff: number, limit = 1000): Promise<number> {
    const old = this.db
      .select({ seq: notifyDeliveries.seq })
      .from(notifyDeliveries)
      .where(and(lt(notifyDeliveries.createdAt, cutoff), ne(notifyDeliveries.status, 'pending')))
      .limit(limit);
    return this.db.delete(notifyDeliveries).where(inArray(notifyDeliveries.seq, old)).run().changes;
  }
}

/** No earlier delivery of the same request to the same receiver is still pending. */
function noEarlierPending(): SQL {
  return sql`not exists (select 1 from notify_deliveries as earlier where earlier.receiver = ${notifyDeliveries.receiver} and earlier.request_id = ${notifyDeliveries.requestId} and earlier.status = 'pending' and earlier.seq < ${notifyDeliveries.seq})`;
}


export function deliveryFilter(f: DeliveryFilter): SQL | undefined {
  return and(
    f.status ? eq(notifyDeliveries.status, f.status) : undefined,
    f.receiver ? eq(notifyDeliveries.receiver, f.receiver) : undefined,
    f.requestId ? eq(notifyDeliveries.requestId, f.requestId) : undefined,
  );
}
