import type { Persistence } from '../core/persistence.js';

const WINDOW_MS = 60_000;

/**
 * A per-minute budget per key that every instance on the database shares: fixed one-minute
 * windows counted in the database (LimitStore), so N instances behind a load balancer allow
 * `limit` calls a minute between them, not N × `limit`. A fixed window lets a caller spend a
 * minute's budget at the end of one window and again at the start of the next; a token bucket
 * kept in one process cannot be shared without a write per call anyway.
 */
export class SharedWindows {
  private currentWindow = 0;

  constructor(
    private readonly deps: {
      store: Persistence;
      now?: () => number;
      /** Told when deleting finished windows failed (nothing else depends on it). */
      onCleanupError?: (err: unknown) => void;
    },
  ) {}

  /** Takes `n` of `key`'s `limit` for this minute, or none: 0 when taken, else the seconds until the next window. */
  async take(key: string, n: number, limit: number): Promise<number> {
    const { store } = this.deps;
    const now = this.deps.now?.() ?? Date.now();
    const windowStart = now - (now % WINDOW_MS);
    if (windowStart !== this.currentWindow) {
      // The first call of a minute in this process sweeps away windows no one counts in any more.
      this.currentWindow = windowStart;
      store.withTransaction((tx) => tx.limits.deleteWindowsBefore(windowStart - WINDOW_MS)).catch((err: unknown) => this.deps.onCleanupError?.(err));
    }
    const count = await store.withTransaction((tx) => tx.limits.addToWindow(key, windowStart, n, limit));
    return count === undefined ? Math.max(1, Math.ceil((windowStart + WINDOW_MS - now) / 1000)) : 0;
  }
}
