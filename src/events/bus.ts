import type { ApprovalView } from '../approvals/approval.js';

export type ApprovalEventType = 'approval.requested' | 'approval.updated' | 'approval.resolved' | 'approval.executed';

export interface ApprovalEvent {
  type: ApprovalEventType;
  approval: ApprovalView;
  /** True when the change was made by another process and found by the polling fallback. */
  remote: boolean;
}

type Listener = (event: ApprovalEvent) => void;

/**
 * The in-process event bus. Subscribers (WebSocket fan-out, metrics) see every event;
 * watchers of one request id (waiting callers) are kept in a map so that waking one of
 * ten thousand waiters costs a lookup, not a scan.
 */
export class ApprovalBus {
  private readonly subscribers = new Set<Listener>();
  private readonly watchers = new Map<string, Set<Listener>>();

  subscribe(listener: Listener): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  watch(requestId: string, listener: Listener): () => void {
    let set = this.watchers.get(requestId);
    if (!set) this.watchers.set(requestId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.watchers.get(requestId) === set) this.watchers.delete(requestId);
    };
  }

  publish(event: ApprovalEvent) {
    const watchers = this.watchers.get(event.approval.id);
    if (watchers) for (const w of [...watchers]) w(event);
    for (const s of this.subscribers) s(event);
  }

  counts() {
    let watchers = 0;
    for (const set of this.watchers.values()) watchers += set.size;
    return { subscribers: this.subscribers.size, watchers };
  }
}
