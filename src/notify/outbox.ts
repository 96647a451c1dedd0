import type { ApprovalRecord, DecisionRecord } from '../approvals/approval.js';
import { summarizeArguments, toApprovalView } from '../approvals/approval.js';
import { feedEventOf } from '../approvals/machine.js';
import type { AuditEntry, AuditLog } from '../audit/audit.service.js';
import { redact } from '../audit/redact.js';
import type { Transaction } from '../core/persistence.js';
import type { NewDelivery } from './notify-store.js';
import type { NotifyEvent, NotifyEventType } from './notify.schemas.js';
import type { Receivers } from './receivers.js';

/** The audit action an escalation writes (in the core's vocabulary, machine.ts). */
export const ESCALATED_ACTION = 'approval.escalated';

/** The notification an audit action announces: the change feed's vocabulary, plus escalations. */
export function notifyEventOf(action: string): NotifyEventType | null {
  return action === ESCALATED_ACTION ? 'approval.escalated' : feedEventOf(action);
}

/** The request in the web console, when the gateway knows its public URL. */
export function consoleLink(publicUrl: string | undefined, requestId: string): string | null {
  return publicUrl ? `${publicUrl.replace(/\/+$/, '')}/console#/r/${requestId}` : null;
}

/**
 * The event as receivers get it, frozen at the moment of the change: the request as the API
 * shows it, with its arguments bounded (as in pushed lists) and redacted as in the audit log, and
 * without the tool's result or the receipt (neither belongs in a chat channel).
 */
export function buildEvent(input: {
  id: string;
  type: NotifyEventType;
  now: number;
  record: ApprovalRecord;
  decisions: readonly DecisionRecord[];
  publicUrl?: string | undefined;
  escalation?: NotifyEvent['escalation'];
}): NotifyEvent {
  const { record } = input;
  const summary = summarizeArguments(record.arguments);
  const view = toApprovalView(record, input.decisions, redact(summary.arguments));
  return {
    id: input.id,
    type: input.type,
    createdAt: new Date(input.now).toISOString(),
    approval: { ...view, result: null, argumentsBytes: summary.argumentsBytes, argumentsTruncated: summary.argumentsTruncated },
    consoleUrl: consoleLink(input.publicUrl, record.id),
    ...(input.escalation ? { escalation: input.escalation } : {}),
  };
}

export interface OutboxDeps {
  receivers: Receivers;
  clock: { now(): number };
  ids: { uuid(): string };
  publicUrl?: string | undefined;
}

/**
 * Writes the outbox rows an audit event announces, in the audit event's own transaction: every
 * change of a request's state appends its audit event in the transaction that makes it, so a
 * notification commits exactly when its change does, and a crash loses neither or both.
 */
export class Outbox {
  constructor(private readonly deps: OutboxDeps) {}

  async announce(tx: Transaction, entry: AuditEntry): Promise<number> {
    const type = notifyEventOf(entry.action);
    if (!type || !entry.requestId || !this.deps.receivers.listen(type)) return 0;
    const record = await tx.approvals.request(entry.requestId);
    if (!record) return 0;
    const escalation = type === 'approval.escalated' ? escalationOf(entry) : undefined;
    const targets = this.deps.receivers.forEvent(type, record.sensitivity, escalation?.notify ?? []);
    if (targets.length === 0) return 0;
    const now = this.deps.clock.now();
    const event = buildEvent({
      id: this.deps.ids.uuid(),
      type,
      now,
      record,
      decisions: await tx.approvals.decisions(record.id),
      publicUrl: this.deps.publicUrl,
      ...(escalation ? { escalation: { afterSeconds: escalation.afterSeconds, mention: escalation.mention } } : {}),
    });
    const payload = JSON.stringify(event);
    const rows: NewDelivery[] = targets.map((receiver) => ({ id: this.deps.ids.uuid(), eventId: event.id, eventType: type, receiver: receiver.name, requestId: record.id, payload, createdAt: now }));
    await tx.notify.insertDeliveries(rows);
    return rows.length;
  }
}

function escalationOf(entry: AuditEntry): { afterSeconds: number; notify: string[]; mention: string[] } {
  const d = entry.details ?? {};
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return { afterSeconds: typeof d.afterSeconds === 'number' ? d.afterSeconds : 0, notify: list(d.notify), mention: list(d.mention) };
}

/**
 * The audit log with the outbox behind it: each event is appended, then the notifications it
 * announces are written in the same transaction; `onCommitted` hears once they are committed.
 * What the core appends it appends through this.
 */
export function announcingAuditLog(audit: AuditLog, outbox: Outbox, onCommitted?: () => void): AuditLog {
  return {
    async append(tx, entry) {
      const record = await audit.append(tx, entry);
      if ((await outbox.announce(tx, entry)) > 0 && onCommitted) tx.onSettled((outcome) => outcome === 'committed' && onCommitted());
      return record;
    },
  };
}
