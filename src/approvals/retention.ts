import { pruneAudit } from '../audit/audit.service.js';
import type { Persistence } from '../core/persistence.js';
import type { Logger } from '../logger.js';
import type { Clock } from './core.js';

export const DAY_MS = 24 * 60 * 60 * 1000;
/** How often the `retention` background job runs: deleting is cheap but not free, and once every few minutes keeps the tables small enough. */
export const RETENTION_EVERY_MS = 5 * 60 * 1000;
/** Rows per DELETE, so one run never holds the write lock long enough to stall callers. */
const BATCH = 1000;
const MAX_BATCHES_PER_RUN = 20;

export interface RetentionDeps {
  store: Persistence;
  clock: Clock;
  logger: Logger;
  approvalRetentionDays: number;
  auditRetentionDays: number;
}

export interface RetentionOutcome {
  requests: number;
  auditEvents: number;
  /** Console sessions that ended (expired or revoked) before the same cutoff as requests. */
  sessions: number;
}

/**
 * Keeps the tables small: decided, expired and cancelled requests older than
 * APPROVAL_RETENTION_DAYS go (their decisions cascade), and audit events older than
 * AUDIT_RETENTION_DAYS are pruned behind an anchor hash so the rest of the chain still verifies;
 * console sessions that ended before the requests' cutoff go too (their audit events stay).
 * Pending requests and running executions are never deleted, however old. Run by the
 * `retention` background job every RETENTION_EVERY_MS.
 */
export class Retention {
  constructor(private readonly deps: RetentionDeps) {}

  async run(now = this.deps.clock.now()): Promise<RetentionOutcome> {
    const { store, logger } = this.deps;
    const requestCutoff = now - this.deps.approvalRetentionDays * DAY_MS;
    let requests = 0;
    for (let i = 0; i < MAX_BATCHES_PER_RUN; i++) {
      const n = await store.withTransaction((tx) => tx.approvals.deleteDecidedBefore(requestCutoff, BATCH));
      requests += n;
      if (n < BATCH) break;
    }
    const auditEvents = await pruneAudit(store, now - this.deps.auditRetentionDays * DAY_MS, now);
    const sessions = await store.withTransaction((tx) => tx.identity.deleteSessionsEndedBefore(requestCutoff));
    if (requests > 0 || auditEvents > 0 || sessions > 0) {
      logger.info({ requests, auditEvents, sessions, approvalRetentionDays: this.deps.approvalRetentionDays, auditRetentionDays: this.deps.auditRetentionDays }, 'retention removed old rows');
    }
    return { requests, auditEvents, sessions };
  }
}
