import { and, asc, desc, eq, inArray, lt, lte, ne, notExists, or, sql, type SQL } from 'drizzle-orm';
import type { ApprovalRecord, Sensitivity } from '../approvals/approval.js';
import { type AttemptOutcome, type DeliveryFilter, type DeliveryRecord, type DeliveryStatus, type NewDelivery, type NotifyStore, type SlackLinkRecord } from '../notify/notify-store.js';
import type { Db } from './client.js';
import { approvalRequests, notifyDeliveries, notifyEscalations, slackLinks } from './schema.js';

const count = sql<number>`count(*)`;
const p = sql.placeholder;

/**
 * The outbox, escalation markers and Slack links on one SQLite connection. Inside the store's
 * `BEGIN IMMEDIATE` a claim's read and update are one step for every process on the file.
 */
export class SqliteNotifyTables implements NotifyStore {
  /** The statements of every event and every attempt, prepared once (the rest are rare). */
  private readonly q;

  constructor(private readonly db: Db) {
    const latestAttempt = and(eq(notifyDeliveries.id, p('id')), eq(notifyDeliveries.attempts, p('attempt')), eq(notifyDeliveries.status, 'pending'));
    this.q = {
      insert: db
        .insert(notifyDeliveries)
        .values({ id: p('id'), eventId: p('eventId'), eventType: p('eventType'), receiver: p('receiver'), requestId: p('requestId'), payload: p('payload'), createdAt: p('createdAt'), nextAttemptAt: p('createdAt'), status: 'pending', attempts: 0 })
        .prepare(),
      // Through notify_deliveries_due_idx, whose entries end with the rowid (seq): in that order, no sort.
      due: db
        .select({ seq: notifyDeliveries.seq })
        .from(notifyDeliveries)
        .where(and(eq(notifyDeliveries.receiver, p('receiver')), eq(notifyDeliveries.status, 'pending'), lte(notifyDeliveries.nextAttemptAt, p('now')), noEarlierPending()))
        .orderBy(asc(notifyDeliveries.nextAttemptAt), asc(notifyDeliveries.seq))
        .limit(p('limit'))
        .prepare(),
      claim: db
        .update(notifyDeliveries)
        .set({ attempts: sql`${notifyDeliveries.attempts} + 1`, nextAttemptAt: sql`${p('leaseUntil')}`, lastAttemptAt: sql`${p('now')}`, claimedBy: sql`${p('instanceId')}` })
        .where(eq(notifyDeliveries.seq, p('seq')))
        .returning()
        .prepare(),
      delivered: db
        .update(notifyDeliveries)
        .set({ status: 'delivered', deliveredAt: sql`${p('now')}`, lastStatus: sql`${p('lastStatus')}`, lastError: null, response: sql`${p('response')}` })
        .where(latestAttempt)
        .returning()
        .prepare(),
      retry: db
        .update(notifyDeliveries)
        .set({ nextAttemptAt: sql`${p('nextAttemptAt')}`, lastStatus: sql`${p('lastStatus')}`, lastError: sql`${p('lastError')}` })
        .where(latestAttempt)
        .returning()
        .prepare(),
      dead: db
        .update(notifyDeliveries)
        .set({ status: 'dead', lastStatus: sql`${p('lastStatus')}`, lastError: sql`${p('lastError')}` })
        .where(latestAttempt)
        .returning()
        .prepare(),
      deliveredResponse: db
        .select({ response: notifyDeliveries.response })
        .from(notifyDeliveries)
        .where(and(eq(notifyDeliveries.requestId, p('requestId')), eq(notifyDeliveries.receiver, p('receiver')), eq(notifyDeliveries.eventType, p('eventType')), eq(notifyDeliveries.status, 'delivered')))
        .orderBy(asc(notifyDeliveries.seq))
        .limit(1)
        .prepare(),
    };
  }

  async insertDeliveries(rows: readonly NewDelivery[]): Promise<void> {
    for (const row of rows) this.q.insert.run(row as unknown as Record<string, unknown>);
  }

  async claimDeliveries(c: { receiver: string; now: number; leaseUntil: number; instanceId: string; limit: number }): Promise<DeliveryRecord[]> {
    const claimed: DeliveryRecord[] = [];
    for (const { seq } of this.q.due.all({ receiver: c.receiver, now: c.now, limit: c.limit })) {
      const row = this.q.claim.get({ seq, leaseUntil: c.leaseUntil, now: c.now, instanceId: c.instanceId });
      if (row) claimed.push(row);
    }
    return claimed.sort((a, b) => a.seq - b.seq);
  }

  async finishAttempt(id: string, attempt: number, o: AttemptOutcome): Promise<DeliveryRecord | undefined> {
    const key = { id, attempt, lastStatus: o.lastStatus };
    if (o.status === 'delivered') return this.q.delivered.get({ ...key, now: o.now, response: o.response ?? null });
    if (o.status === 'pending') return this.q.retry.get({ ...key, nextAttemptAt: o.nextAttemptAt, lastError: o.lastError });
    return this.q.dead.get({ ...key, lastError: o.lastError });
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
    return this.q.deliveredResponse.get({ receiver, requestId, eventType })?.response ?? null;
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
