import type { Persistence } from '../core/persistence.js';
import type { ApprovalBus } from '../events/bus.js';
import { feedEventOf } from './machine.js';
import type { ApprovalViews } from './views.js';

/** Events read per query; a longer backlog is read in several. */
const PAGE = 1000;
/**
 * How long a hole in the seqs may stay open before it counts as an insert that was rolled back.
 * On PostgreSQL a seq is taken when the event is inserted, not when it commits, so a transaction
 * still running leaves a hole that fills when it commits; this is far longer than any transaction
 * (the statement timeout bounds each statement).
 */
export const GAP_PATIENCE_MS = 60_000;

/** Where new events are: another instance committed events with seqs from `from` on. */
export interface ChangeHint {
  instanceId: string;
  from: number;
  through: number;
}

/**
 * Wake-up hints between instances: right after a commit, an instance says where its new events
 * are, and the others read them at once instead of at their next poll. A hint is only a hint: the
 * stored events are the truth, so a lost or repeated hint changes nothing but how soon they are
 * read. SQLite has none (polling is all there is); PostgreSQL sends them with NOTIFY.
 */
export interface ChangeHints {
  /** Tells the other instances where this instance's newly committed events are. Never throws. */
  announce(hint: ChangeHint): void;
  /**
   * Calls `onHint` for hints from other instances and `onConnected` each time the listening
   * connection is (re)established, when hints sent meanwhile may have been lost. Resolves once
   * listening; the returned function stops.
   */
  listen(handlers: { onHint(hint: ChangeHint): void; onConnected(): void }): Promise<() => Promise<void>>;
}

/**
 * The cross-process change feed: reads the audit events other processes wrote since the last
 * read and publishes each as the bus event it stands for (the machine's FEED_EVENT_OF_ACTION),
 * so that callers waiting here and approvers connected here learn of decisions, expiries and runs
 * made elsewhere. The audit log is the source of truth; this is how a process hears of it.
 *
 * It reads on every poll (`pull`) and whenever a hint says another instance committed events
 * (`wake`). Seqs are not taken in commit order on PostgreSQL, so it keeps the seqs it has read
 * above the point up to which it has read everything, and reads the holes again until they fill
 * or GAP_PATIENCE_MS passes: an event that commits late is published all the same, and none twice.
 */
export class ChangeFeed {
  /** Every seq up to here has been read, or given up on as rolled back. */
  private readThrough = 0;
  /** The largest seq read. */
  private newestRead = 0;
  /** Seqs above `readThrough` already read. */
  private readonly seen = new Set<number>();
  /** Seqs missing above `readThrough`, with when each was first found missing. */
  private readonly holes = new Map<number, number>();
  /** Seqs up to here have been looked at for holes. */
  private holesFoundThrough = 0;
  private reading: Promise<number> | null = null;
  private queued: Promise<number> | null = null;
  /** Where the read queued next starts: the smallest seq a hint pointed at since the last read. */
  private wakeFrom = Number.POSITIVE_INFINITY;
  private queuedFull = false;

  constructor(
    private readonly deps: {
      store: Persistence;
      bus: ApprovalBus;
      views: ApprovalViews;
      instanceId: string;
      /** Told of every request resolved elsewhere (its expiry timer here can go). */
      onResolvedElsewhere?: (requestId: string) => void;
      /** Monotonic milliseconds, for how long a hole has been open. */
      monotonicNow?: () => number;
    },
  ) {}

  /** Starts after the newest event: what happened before this process started is not news. */
  async start() {
    this.readThrough = this.newestRead = (await this.deps.store.audit.lastAudit())?.seq ?? 0;
  }

  /** Publishes what other processes changed since the last read, holes included; returns how many events it published. */
  pull(): Promise<number> {
    return this.schedule({ full: true });
  }

  /** Reads the events a hint points at (and anything newer) as soon as the read in progress ends. */
  wake(hint: Pick<ChangeHint, 'from'>): Promise<number> {
    return this.schedule({ full: false, from: hint.from });
  }

  /** Reads never overlap: a call during a read is served by one more read right after it. */
  private schedule(request: { full: boolean; from?: number }): Promise<number> {
    if (request.full) this.queuedFull = true;
    if (request.from !== undefined) this.wakeFrom = Math.min(this.wakeFrom, request.from);
    if (!this.reading) return this.startRead();
    this.queued ??= this.reading.then(
      () => this.startRead(),
      () => this.startRead(),
    );
    return this.queued;
  }

  private startRead(): Promise<number> {
    this.queued = null;
    // A poll reads every hole again; a hint reads from where it points (a late commit fills a hole).
    const after = this.queuedFull ? this.readThrough : Math.max(this.readThrough, Math.min(this.newestRead, this.wakeFrom - 1));
    this.queuedFull = false;
    this.wakeFrom = Number.POSITIVE_INFINITY;
    const read = this.read(after);
    this.reading = read;
    void read.then(
      () => this.reading === read && (this.reading = null),
      () => this.reading === read && (this.reading = null),
    );
    return read;
  }

  private async read(after: number): Promise<number> {
    const { store, bus, views, instanceId } = this.deps;
    let published = 0;
    let cursor = after;
    for (;;) {
      const page = await store.audit.auditEventsAfter(cursor, PAGE);
      if (page.length === 0) break;
      cursor = page[page.length - 1]!.seq;
      const once = new Set<string>();
      for (const e of page) {
        if (e.seq <= this.readThrough || this.seen.has(e.seq)) continue;
        this.seen.add(e.seq);
        this.newestRead = Math.max(this.newestRead, e.seq);
        const type = feedEventOf(e.action);
        if (e.instanceId === instanceId || !type || !e.requestId || once.has(`${e.requestId}:${type}`)) continue;
        once.add(`${e.requestId}:${type}`);
        const record = await store.approvals.request(e.requestId);
        if (!record) continue;
        if (type === 'approval.resolved') this.deps.onResolvedElsewhere?.(record.id);
        bus.publish({ type, approval: await views.view(record), remote: true });
        published++;
      }
      if (page.length < PAGE) break;
    }
    this.closeHoles();
    return published;
  }

  /** Moves `readThrough` over what has been read and over holes open for longer than GAP_PATIENCE_MS. */
  private closeHoles() {
    const now = (this.deps.monotonicNow ?? (() => performance.now()))();
    for (let seq = Math.max(this.readThrough, this.holesFoundThrough) + 1; seq < this.newestRead; seq++) {
      if (!this.seen.has(seq)) this.holes.set(seq, now);
    }
    this.holesFoundThrough = Math.max(this.holesFoundThrough, this.newestRead);
    while (this.readThrough < this.newestRead) {
      const next = this.readThrough + 1;
      if (this.seen.delete(next)) this.holes.delete(next);
      else if (now - (this.holes.get(next) ?? now) >= GAP_PATIENCE_MS) this.holes.delete(next);
      else break;
      this.readThrough = next;
    }
  }

  /** Seqs missing below the newest read that have not been read yet (how many holes are open). */
  get openHoles(): number {
    return this.holes.size;
  }
}
