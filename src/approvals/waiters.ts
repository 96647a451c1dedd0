import type { ApprovalBus } from '../events/bus.js';
import { executionSettled, type ApprovalView } from './approval.js';
import type { ApprovalViews } from './views.js';

/** How a parked caller's wait ended. */
export type WaitEnd =
  /** The request left `pending`. `claimed`: the deciding transaction already claimed its run for this caller. */
  | { kind: 'decided'; approval: ApprovalView; claimed: boolean }
  /** The caller went away (its connection closed) while the request was pending. */
  | { kind: 'caller-gone' }
  /** The gateway is stopping: it answers instead of holding the caller. */
  | { kind: 'shutting-down' };

/** How a long-poll ended: with the request as it now is, whether or not it settled. */
export type LongPollEnd = { kind: 'settled' | 'timed-out'; approval: ApprovalView } | { kind: 'shutting-down'; approval: ApprovalView };

/** A caller of this process waiting for the decision on its `wait` request. */
export interface Waiter {
  readonly requestId: string;
  readonly httpRequestId: string | undefined;
  /** Set once the approving transaction claimed the run for this waiter (see Executor.claimFor). */
  claimed: boolean;
  end(how: WaitEnd): void;
}

/**
 * The callers this process holds: `wait` callers parked until their request is decided, and
 * long-polls (`GET /api/approvals/{id}?wait`) parked until it is settled. Both are woken by the
 * bus (a decision made here, or read from the change feed) and answered at once on shutdown.
 * In memory only; it never writes.
 */
export class Waiters {
  private readonly callers = new Map<string, Waiter>();
  private readonly longPolls = new Set<() => void>();
  private closed = false;

  constructor(private readonly deps: { bus: ApprovalBus; views: ApprovalViews }) {}

  /** Parks a caller until its request leaves `pending`, it goes away, or the gateway stops. Never rejects. */
  untilDecided(id: string, options: { signal?: AbortSignal | undefined; httpRequestId?: string | undefined }): Promise<WaitEnd> {
    const { signal } = options;
    return new Promise<WaitEnd>((resolve) => {
      let done = false;
      const waiter: Waiter = {
        requestId: id,
        httpRequestId: options.httpRequestId,
        claimed: false,
        end: (how) => {
          if (done) return;
          done = true;
          unwatch();
          signal?.removeEventListener('abort', onAbort);
          if (this.callers.get(id) === waiter) this.callers.delete(id);
          resolve(how.kind === 'decided' ? { ...how, claimed: waiter.claimed } : how);
        },
      };
      const onAbort = () => waiter.end({ kind: 'caller-gone' });
      const check = (approval: ApprovalView) => {
        if (approval.status !== 'pending') waiter.end({ kind: 'decided', approval, claimed: false });
      };
      const unwatch = this.deps.bus.watch(id, (event) => check(event.approval));
      this.callers.set(id, waiter);
      if (this.closed) return waiter.end({ kind: 'shutting-down' });
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      // Decided between its creation and now (by a fast approver or another process)?
      this.deps.views.viewOf(id).then(check, () => undefined);
    });
  }

  /** The caller waiting here for this request, if any. */
  heldHere(id: string): Waiter | undefined {
    return this.callers.get(id);
  }

  /**
   * Long-poll: resolves when the request is decided and, if this gateway runs it, its execution
   * has finished; or when `timeoutMs` passes. Always with the request as it then is.
   */
  async untilSettled(id: string, timeoutMs: number, signal?: AbortSignal): Promise<LongPollEnd> {
    const settled = (a: ApprovalView) => a.status !== 'pending' && executionSettled(a.execution.status);
    const current = await this.deps.views.viewOf(id);
    if (settled(current)) return { kind: 'settled', approval: current };
    if (timeoutMs <= 0) return { kind: 'timed-out', approval: current };
    const how = await new Promise<LongPollEnd['kind']>((resolve) => {
      const finish = (kind: LongPollEnd['kind']) => {
        clearTimeout(timer);
        unwatch();
        this.longPolls.delete(onShutdown);
        signal?.removeEventListener('abort', onAbort);
        resolve(kind);
      };
      // Shutdown answers a long-poll at once (503) instead of holding the stop until the connection is cut.
      const onShutdown = () => finish('shutting-down');
      const onAbort = () => finish('timed-out');
      const timer = setTimeout(() => finish('timed-out'), timeoutMs);
      const unwatch = this.deps.bus.watch(id, (event) => {
        if (settled(event.approval)) finish('settled');
      });
      this.longPolls.add(onShutdown);
      if (this.closed) return onShutdown();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return { kind: how, approval: await this.deps.views.viewOf(id) };
  }

  /** Stops parking callers; answers every long-poll. Returns the waiters still held, for the caller to cancel and end. */
  close(): Waiter[] {
    this.closed = true;
    for (const answer of [...this.longPolls]) answer();
    this.longPolls.clear();
    return [...this.callers.values()];
  }

  counts() {
    return { localWaiters: this.callers.size, longPolls: this.longPolls.size };
  }
}
