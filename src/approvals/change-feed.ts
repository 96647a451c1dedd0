import type { Persistence } from '../core/persistence.js';
import type { ApprovalBus } from '../events/bus.js';
import { feedEventOf } from './machine.js';
import type { ApprovalViews } from './views.js';

/** Events read per query; a longer backlog is read in several. */
const PAGE = 1000;

/**
 * The cross-process change feed: reads the audit events other processes wrote since the last
 * read and publishes each as the bus event it stands for (the machine's FEED_EVENT_OF_ACTION),
 * so that callers waiting here and approvers connected here learn of decisions, expiries and runs
 * made elsewhere. The audit log is the source of truth; this is how a process hears of it.
 */
export class ChangeFeed {
  private lastSeq = 0;

  constructor(
    private readonly deps: {
      store: Persistence;
      bus: ApprovalBus;
      views: ApprovalViews;
      instanceId: string;
      /** Told of every request resolved elsewhere (its expiry timer here can go). */
      onResolvedElsewhere?: (requestId: string) => void;
    },
  ) {}

  /** Starts after the newest event: what happened before this process started is not news. */
  async start() {
    this.lastSeq = (await this.deps.store.audit.lastAudit())?.seq ?? 0;
  }

  /** Publishes what other processes changed since the last read; returns how many events it published. */
  async pull(): Promise<number> {
    const { store, bus, views, instanceId } = this.deps;
    let published = 0;
    for (;;) {
      const events = await store.audit.auditEventsAfter(this.lastSeq, PAGE);
      if (events.length === 0) return published;
      this.lastSeq = events[events.length - 1]!.seq;
      const seen = new Set<string>();
      for (const e of events) {
        const type = feedEventOf(e.action);
        if (e.instanceId === instanceId || !type || !e.requestId || seen.has(`${e.requestId}:${type}`)) continue;
        seen.add(`${e.requestId}:${type}`);
        const record = await store.approvals.request(e.requestId);
        if (!record) continue;
        if (type === 'approval.resolved') this.deps.onResolvedElsewhere?.(record.id);
        bus.publish({ type, approval: await views.view(record), remote: true });
        published++;
      }
      if (events.length < PAGE) return published;
    }
  }
}
