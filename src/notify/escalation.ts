import type { AuditLog } from '../audit/audit.service.js';
import type { Persistence } from '../core/persistence.js';
import type { Logger } from '../logger.js';
import type { EscalationConfig } from './notify.schemas.js';
import { ESCALATED_ACTION } from './outbox.js';
import { escalationRules } from './receivers.js';

/** Requests escalated per run and sensitivity; a longer backlog is taken on the next runs. */
const BATCH = 100;

export interface EscalationDeps {
  store: Persistence;
  /** The announcing audit log: the `approval.escalated` event writes the escalation's deliveries in its transaction. */
  audit: AuditLog;
  clock: { now(): number };
  logger: Logger;
  rules: EscalationConfig;
  /** Told after escalations were committed (the delivery worker looks at once). */
  onEscalated?: () => void;
}

/**
 * Escalation: a request still pending `afterSeconds` after it was made is escalated once: marked,
 * its `approval.escalated` audit event appended and the escalation's receivers' deliveries written,
 * all in one transaction that holds the request's decision lock, so a decision and an escalation
 * never cross (a request settled first escalates nothing) and two gateways never both escalate it.
 * Run every polling interval: a request escalates within one interval of its time.
 */
export class Escalations {
  private readonly rules;

  constructor(private readonly deps: EscalationDeps) {
    this.rules = escalationRules(deps.rules);
  }

  get configured(): boolean {
    return this.rules.length > 0;
  }

  /** Escalates every request whose time has come; returns how many. */
  async run(): Promise<number> {
    const { store, clock, audit } = this.deps;
    let escalated = 0;
    for (const [sensitivity, rule] of this.rules) {
      const afterMs = Math.round(rule.afterSeconds * 1000);
      const due = await store.notify.dueForEscalation(sensitivity, clock.now() - afterMs, BATCH);
      for (const candidate of due) {
        const done = await store.withTransaction(async (tx) => {
          const record = await tx.approvals.lockForDecision(candidate.id);
          if (!record || record.status !== 'pending') return false;
          const now = clock.now();
          if (now - record.requestedAt < afterMs || !(await tx.notify.markEscalated(record.id, now))) return false;
          await audit.append(tx, {
            actor: 'system',
            action: ESCALATED_ACTION,
            tool: record.tool,
            requestId: record.id,
            status: 'pending',
            durationMs: now - record.requestedAt,
            details: { sensitivity, afterSeconds: rule.afterSeconds, notify: rule.notify, mention: rule.mention },
          });
          return true;
        });
        if (done) escalated++;
      }
    }
    if (escalated > 0) {
      this.deps.logger.info({ escalated }, 'escalated requests nobody decided in time');
      this.deps.onEscalated?.();
    }
    return escalated;
  }
}
