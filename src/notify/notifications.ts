import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PollingJob } from '../approvals/polling-jobs.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { Persistence } from '../core/persistence.js';
import type { Logger } from '../logger.js';
import { DeliveryWorker, type DeliveryMetrics } from './delivery-worker.js';
import { Escalations } from './escalation.js';
import { announcingAuditLog, Outbox } from './outbox.js';
import type { NotifySettings } from './receivers.js';

export interface NotificationsDeps {
  settings: NotifySettings;
  store: Persistence;
  /** The gateway's audit log; what the core writes through the returned `audit` also fills the outbox. */
  audit: AuditLog;
  clock: { now(): number };
  ids: { uuid(): string };
  instanceId: string;
  logger: Logger;
  publicUrl: string | undefined;
  /** The pace of retries coming due and of escalations (APPROVAL_POLLING_INTERVAL). */
  pollingIntervalMs: number;
  keepFinishedMs: number;
  registry?: Registry | undefined;
}

/** The notification side of a gateway: the outbox behind the audit log, the delivery worker, escalation. */
export interface Notifications {
  /** The audit log to give the core: it writes each event's deliveries in the event's transaction. */
  audit: AuditLog;
  worker: DeliveryWorker;
  escalations: Escalations;
  /** Background jobs to run with the gateway's own (escalation). */
  jobs: PollingJob[];
  settings: NotifySettings;
  start(): void;
  stop(): Promise<void>;
}

export function createNotifications(deps: NotificationsDeps): Notifications {
  const { settings, store, clock, logger } = deps;
  const receivers = settings.receivers;
  // No receiver: the audit log stays as it is, and nothing runs.
  const outbox = new Outbox({ receivers, clock, ids: deps.ids, publicUrl: deps.publicUrl });
  const audit = receivers.size > 0 ? announcingAuditLog(deps.audit, outbox, () => worker.nudge()) : deps.audit;
  const worker = new DeliveryWorker({
    store,
    receivers,
    slack: settings.slack,
    clock,
    instanceId: deps.instanceId,
    logger,
    tickMs: Math.min(deps.pollingIntervalMs, 1000),
    keepFinishedMs: deps.keepFinishedMs,
    metrics: deps.registry && receivers.size > 0 ? registerMetrics(deps.registry, store) : undefined,
  });
  const escalations = new Escalations({ store, audit, clock, logger, rules: settings.escalation, onEscalated: () => worker.nudge() });
  return {
    audit,
    worker,
    escalations,
    jobs: escalations.configured ? [{ name: 'escalate-overdue', run: () => escalations.run() }] : [],
    settings,
    start() {
      worker.start();
    },
    async stop() {
      await worker.stop();
    },
  };
}

function registerMetrics(registry: Registry, store: Persistence): DeliveryMetrics {
  const attempts = new Counter({
    name: 'toolgate_notify_attempts_total',
    help: 'Notification delivery attempts by receiver and outcome (delivered, retry: failed and to be tried again, dead: given up)',
    labelNames: ['receiver', 'outcome'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'toolgate_notify_attempt_duration_seconds',
    help: 'How long a notification delivery attempt took, by receiver',
    labelNames: ['receiver'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  new Gauge({
    name: 'toolgate_notify_deliveries',
    help: 'Notification deliveries in the outbox by receiver and status (pending, delivered, dead), read at scrape time',
    labelNames: ['receiver', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await store.notify.deliveryCounts()) this.set({ receiver: row.receiver, status: row.status }, row.count);
    },
  });
  return {
    attempted(receiver, outcome, ms) {
      attempts.inc({ receiver, outcome });
      duration.observe({ receiver }, ms / 1000);
    },
  };
}
