/**
 * Counters of fixed time windows that every instance on the database shares: how a rate limit
 * holds across the cluster rather than per process.
 */
export interface LimitStore {
  /**
   * Adds `n` to `key`'s count in the window that starts at `windowStart`, only if the count stays
   * within `limit`; returns the new count, or undefined (nothing added) when it would not. One
   * atomic statement: instances counting at once never take more than `limit` between them.
   */
  addToWindow(key: string, windowStart: number, n: number, limit: number): Promise<number | undefined>;
  /** Deletes the windows that started before `windowStart`; returns how many. */
  deleteWindowsBefore(windowStart: number): Promise<number>;
}
