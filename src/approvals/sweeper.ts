import { hostname } from 'node:os';
import type { Persistence } from '../core/persistence.js';
import type { Logger } from '../logger.js';
import type { PolicyService } from '../policy/policy.service.js';
import type { ApprovalService, Clock } from './approvals.service.js';
import { feedEventOf } from './machine.js';

export interface SweeperDeps {
  store: Persistence;
  approvals: ApprovalService;
  policy: PolicyService;
  clock: Clock;
  logger: Logger;
  instanceId: string;
  pollingIntervalMs: number;
  /** An instance whose heartbeat is older than this is dead (default: 5 intervals, at least 5 s). */
  staleAfterMs?: number;
  /** Re-checks every approver socket's user and role (a user disabled elsewhere loses the socket within an interval). */
  revalidateSessions?: () => void;
  /** Extra work per tick (retention, say); errors are logged, never fatal. */
  extraTasks?: (() => unknown)[];
  /**
   * Called once when a peer has declared this instance dead (its row is marked stopped): this
   * instance has been recovered after, so it must stop serving. The sweeper has stopped by then.
   */
  onFenced?: () => void;
}

/**
 * The polling fallback. Every interval it heartbeats this instance, recovers after instances
 * that died, expires overdue requests, runs approved async requests nobody runs, and reads the
 * audit events other processes wrote since the last tick, turning them into bus events so that
 * waiting callers and connected approvers here learn of decisions made elsewhere. Last, it
 * re-checks the approvers' sockets against users and roles changed elsewhere.
 *
 * The heartbeat also has its own timer, so that slow steps of a tick never delay it, and it is
 * conditional: when a peer has declared this instance dead, it finds its row stopped and fences
 * itself off (`onFenced`) instead of carrying on as a ghost.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastSeq = 0;
  private readonly staleAfterMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly host = hostname();
  /** When the previous tick ran (monotonic), to tell when this process itself was stalled. */
  private lastTickAt: number | null = null;
  private fencedOff = false;

  /** The last tick asked for: ticks run one after another, never overlapping. */
  private ticking: Promise<void> = Promise.resolve();
  private busy = false;

  constructor(private readonly deps: SweeperDeps) {
    this.staleAfterMs = deps.staleAfterMs ?? Math.max(5000, deps.pollingIntervalMs * 5);
    // At least three heartbeats per stale threshold, so one late beat never looks like death.
    this.heartbeatIntervalMs = Math.max(10, Math.min(deps.pollingIntervalMs, Math.floor(this.staleAfterMs / 3)));
  }

  /** Registers this instance and recovers at once after any instance that is already gone. */
  async start() {
    const { store, clock, instanceId } = this.deps;
    this.lastSeq = (await store.audit.lastAudit())?.seq ?? 0;
    await store.withTransaction((tx) => tx.instances.registerInstance({ id: instanceId, hostname: this.host, pid: process.pid, now: clock.now() }));
    await this.tick();
    if (this.fencedOff) return;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    // A tick still running when the next is due is not queued behind: the next interval catches up.
    this.timer = setInterval(() => {
      if (!this.busy) void this.tick();
    }, this.deps.pollingIntervalMs);
    this.timer.unref();
  }

  /** Stops the timers; resolves once a tick in progress has finished. */
  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.timer = null;
    this.heartbeatTimer = null;
    return this.ticking;
  }

  /** True once a peer declared this instance dead; nothing more runs here. */
  get fenced() {
    return this.fencedOff;
  }

  /** Writes this instance's heartbeat; false (and fenced) when a peer has marked it stopped. */
  async heartbeat(): Promise<boolean> {
    if (this.fencedOff) return false;
    let alive: boolean;
    try {
      const { instanceId, clock } = this.deps;
      alive = (await this.deps.store.withTransaction((tx) => tx.instances.heartbeat(instanceId, clock.now()))) !== undefined;
    } catch (err) {
      // A busy or unreachable database is not a verdict: the next beat tries again.
      this.deps.logger.error({ err }, 'could not write the heartbeat');
      return true;
    }
    if (!alive && !this.fencedOff) this.fence();
    return alive;
  }

  private fence() {
    this.fencedOff = true;
    void this.stop();
    this.deps.logger.error(
      { instance: this.deps.instanceId },
      'this instance was declared dead by a peer (it missed heartbeats past the stale threshold) and its work was recovered; it stops serving',
    );
    try {
      this.deps.onFenced?.();
    } catch (err) {
      this.deps.logger.error({ err }, 'stopping after being fenced off failed');
    }
  }

  /** One round of every step, after the round in progress if there is one. */
  tick(): Promise<void> {
    const next = this.ticking.then(() => this.runSteps());
    this.ticking = next.catch(() => undefined);
    return next;
  }

  private async runSteps() {
    this.busy = true;
    try {
      await this.steps();
    } finally {
      this.busy = false;
    }
  }

  private async steps() {
    // Heartbeat first: a fenced instance must not recover, expire or run anything.
    if (!(await this.heartbeat())) return;
    const now = performance.now();
    // This process was itself stalled (a blocked event loop, a paused VM): every peer's
    // heartbeat looks old to it for now. Judge them on a later tick, once they had time to beat.
    const stalled = this.lastTickAt !== null && now - this.lastTickAt > this.staleAfterMs / 2;
    this.lastTickAt = now;
    const steps: [string, () => unknown][] = [
      ...(stalled ? [] : [['recover', () => this.recoverDeadInstances()] as [string, () => unknown]]),
      ['remote', () => this.syncRemoteChanges()],
      ['expire', () => this.deps.approvals.expireDue()],
      ['async', () => this.deps.approvals.runApprovedAsync()],
      ['policy', () => this.deps.policy.refresh()],
      ['sessions', () => this.deps.revalidateSessions?.()],
      ...(this.deps.extraTasks ?? []).map((task, i) => [`task${i}`, task] as [string, () => unknown]),
    ];
    for (const [name, step] of steps) {
      if (this.fencedOff) return;
      try {
        await step();
      } catch (err) {
        this.deps.logger.error({ err, step: name }, 'sweeper step failed');
      }
    }
  }

  private isDead(instance: { hostname: string; pid: number; heartbeatAt: number }): boolean {
    if (this.deps.clock.now() - instance.heartbeatAt > this.staleAfterMs) return true;
    if (instance.hostname !== this.host || instance.pid === process.pid) return false;
    try {
      process.kill(instance.pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }

  async recoverDeadInstances() {
    const { store, approvals, clock, logger } = this.deps;
    for (const instance of await store.instances.liveInstancesOtherThan(this.deps.instanceId)) {
      if (!this.isDead(instance)) continue;
      // Fence first, and only if it has not beaten meanwhile: from here on its own heartbeat
      // fails, so it cannot go on serving callers whose requests are about to be cancelled.
      if (!(await store.withTransaction((tx) => tx.instances.fenceInstance(instance.id, instance.heartbeatAt, clock.now())))) continue;
      const outcome = await approvals.recoverInstance(instance.id);
      logger.warn({ instance: instance.id, ...outcome }, 'recovered after a gateway instance that stopped heartbeating');
    }
  }

  async syncRemoteChanges() {
    const { store, approvals, instanceId } = this.deps;
    for (;;) {
      const events = await store.audit.auditEventsAfter(this.lastSeq);
      if (events.length === 0) return;
      this.lastSeq = events[events.length - 1]!.seq;
      const seen = new Set<string>();
      for (const e of events) {
        const type = feedEventOf(e.action);
        if (e.instanceId === instanceId || !type || !e.requestId || seen.has(`${e.requestId}:${type}`)) continue;
        seen.add(`${e.requestId}:${type}`);
        const row = await store.approvals.request(e.requestId);
        if (!row) continue;
        approvals.publish(type, await approvals.view(row), true);
      }
      if (events.length < 1000) return;
    }
  }
}
