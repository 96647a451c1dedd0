import type { ApprovalRecord, Sensitivity } from '../approvals/approval.js';

export type DeliveryStatus = 'pending' | 'delivered' | 'dead';

/** One event for one receiver in the outbox. */
export interface DeliveryRecord {
  /** Orders a request's deliveries to one receiver. */
  seq: number;
  id: string;
  eventId: string;
  eventType: string;
  receiver: string;
  requestId: string;
  payload: string;
  status: DeliveryStatus;
  /** Attempts started so far; an attempt's id is `<id>.<number>`. */
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  lastAttemptAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
  response: string | null;
  claimedBy: string | null;
}

export type NewDelivery = Pick<DeliveryRecord, 'id' | 'eventId' | 'eventType' | 'receiver' | 'requestId' | 'payload' | 'createdAt'>;

/** How an attempt ended: delivered, to be tried again at `nextAttemptAt`, or given up. */
export type AttemptOutcome =
  | { status: 'delivered'; now: number; lastStatus: number | null; response?: string | null }
  | { status: 'pending'; now: number; nextAttemptAt: number; lastStatus: number | null; lastError: string }
  | { status: 'dead'; now: number; lastStatus: number | null; lastError: string };

export interface DeliveryFilter {
  limit: number;
  status?: DeliveryStatus | undefined;
  receiver?: string | undefined;
  requestId?: string | undefined;
}

export interface SlackLinkRecord {
  slackUserId: string;
  userId: string;
  createdAt: number;
}

export interface NotifyReads {
  /** Deliveries, newest first. */
  deliveries(filter: DeliveryFilter): Promise<DeliveryRecord[]>;
  /** How many deliveries each receiver has in each status. */
  deliveryCounts(): Promise<{ receiver: string; status: DeliveryStatus; count: number }[]>;
  /** The stored answer (`response`) of a request's delivered event of `eventType` to `receiver`, oldest first. */
  deliveredResponse(receiver: string, requestId: string, eventType: string): Promise<string | null>;
  /** Pending requests of `sensitivity` made at or before `requestedBy` that were never escalated, oldest first. */
  dueForEscalation(sensitivity: Sensitivity, requestedBy: number, limit: number): Promise<ApprovalRecord[]>;
  slackLinkOf(slackUserId: string): Promise<SlackLinkRecord | undefined>;
  slackLinks(): Promise<SlackLinkRecord[]>;
}

/**
 * The outbox, escalation markers and Slack links inside a transaction. Outbox rows are inserted in
 * the transaction of the change they announce, so they commit (or roll back) with it.
 */
export interface NotifyStore extends NotifyReads {
  insertDeliveries(rows: readonly NewDelivery[]): Promise<void>;
  /**
   * Claims up to `limit` of `receiver`'s deliveries that are due at `now`, oldest first, skipping
   * any whose request has an earlier delivery to this receiver still pending (a request's events
   * arrive in order). Each claimed row's `attempts` goes up by one and its next attempt moves to
   * `leaseUntil`, so nobody claims it again while this attempt runs; a process that dies mid-send
   * leaves it to be claimed again after the lease, under a new attempt number. PostgreSQL:
   * `FOR UPDATE SKIP LOCKED`, so instances claiming at once take different rows.
   */
  claimDeliveries(claim: { receiver: string; now: number; leaseUntil: number; instanceId: string; limit: number }): Promise<DeliveryRecord[]>;
  /** Records how attempt `attempt` ended, only if it still is the latest attempt of a pending delivery. */
  finishAttempt(id: string, attempt: number, outcome: AttemptOutcome): Promise<DeliveryRecord | undefined>;
  /** Marks a request escalated; false when it already was (exactly one caller gets true). */
  markEscalated(requestId: string, now: number): Promise<boolean>;
  /** Links a Slack user to a toolgate user, replacing the user's and the Slack user's earlier links. */
  linkSlack(row: SlackLinkRecord): Promise<void>;
  /** Removes a user's Slack link; returns the Slack user id it had. */
  unlinkSlack(userId: string): Promise<string | undefined>;
  /** Deletes up to `limit` delivered or dead deliveries created before `cutoff`; returns how many. */
  deleteFinishedDeliveriesBefore(cutoff: number, limit?: number): Promise<number>;
}

/** The columns an attempt's outcome sets. */
export function attemptChanges(o: AttemptOutcome): Partial<DeliveryRecord> {
  if (o.status === 'delivered') return { status: o.status, deliveredAt: o.now, lastStatus: o.lastStatus, lastError: null, response: o.response ?? null };
  if (o.status === 'pending') return { status: o.status, nextAttemptAt: o.nextAttemptAt, lastStatus: o.lastStatus, lastError: o.lastError };
  return { status: o.status, lastStatus: o.lastStatus, lastError: o.lastError };
}
