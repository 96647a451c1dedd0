import { hostname } from 'node:os';
import type { Persistence } from '../core/persistence.js';
import type { Logger } from '../logger.js';
import type { InstanceRecord } from './approval-store.js';

export interface InstanceRegistryDeps {
  store: Persistence;
  clock: { now(): number };
  logger: Logger;
  instanceId: string;
  /** A peer whose heartbeat is older than this is dead. */
  staleAfterMs: number;
  /** How often this instance writes its heartbeat: at least three beats per stale threshold. */
  heartbeatIntervalMs: number;
  /**
   * Called once when a peer has declared this instance dead (its row is marked stopped): this
   * instance has been recovered after, so it must stop serving.
   */
  onFenced?: (() => void) | undefined;
  /**
   * Whether a peer on this host whose pid is gone is dead at once (default true). Only for a
   * database one machine shares (SQLite): across hosts a host name and pid prove nothing.
   */
  probeLocalPids?: boolean;
}

/** The stale threshold and heartbeat pace for a polling interval: max(5 s, 5 intervals), and three beats in it. */
export function livenessTiming(pollingIntervalMs: number, staleAfterMs = Math.max(5000, pollingIntervalMs * 5)) {
  return { staleAfterMs, heartbeatIntervalMs: Math.max(10, Math.min(pollingIntervalMs, Math.floor(staleAfterMs / 3))) };
}

/**
 * This gateway's row among the instances sharing the database: registered at start, kept alive
 * by a heartbeat on its own timer (so slow jobs never make a live gateway look dead), and fenced
 * off when a peer declared it dead. Also the judge of which peers are dead.
 */
export class InstanceRegistry {
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly host = hostname();
  private fencedOff = false;

  constructor(private readonly deps: InstanceRegistryDeps) {}

  get instanceId(): string {
    return this.deps.instanceId;
  }

  /** True once a peer declared this instance dead; nothing more runs here. */
  get fenced(): boolean {
    return this.fencedOff;
  }

  /** Now, on the clock liveness is judged by: the database's where it has its own (hosts' clocks drift), else this process's. */
  private async now(): Promise<number> {
    return (await this.deps.store.instances.databaseTime()) ?? this.deps.clock.now();
  }

  async register() {
    const { store, instanceId } = this.deps;
    const now = await this.now();
    await store.withTransaction((tx) => tx.instances.registerInstance({ id: instanceId, hostname: this.host, pid: process.pid, now }));
  }

  startHeartbeat() {
    if (this.fencedOff || this.heartbeatTimer) return;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.deps.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  stopHeartbeat() {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  /** Writes this instance's heartbeat; false (and fenced) when a peer has marked it stopped. */
  async heartbeat(): Promise<boolean> {
    if (this.fencedOff) return false;
    let alive: boolean;
    try {
      const { store, instanceId } = this.deps;
      const now = await this.now();
      alive = (await store.withTransaction((tx) => tx.instances.heartbeat(instanceId, now))) !== undefined;
    } catch (err) {
      // A busy or unreachable database is not a verdict: the next beat tries again.
      this.deps.logger.error({ err }, 'could not write the heartbeat');
      return true;
    }
    if (!alive) this.fence();
    return alive && !this.fencedOff;
  }

  private fence() {
    if (this.fencedOff) return;
    this.fencedOff = true;
    this.stopHeartbeat();
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

  /**
   * Peers that stopped heartbeating, each fenced by this call (a compare-and-set on the heartbeat
   * it judged stale, so of two judges exactly one gets it, and a peer that beat meanwhile is left).
   */
  async fenceDeadPeers(): Promise<InstanceRecord[]> {
    const { store, instanceId } = this.deps;
    const fenced: InstanceRecord[] = [];
    const peers = await store.instances.liveInstancesOtherThan(instanceId);
    const now = await this.now();
    for (const peer of peers) {
      if (!this.isDead(peer, now)) continue;
      const won = await store.withTransaction((tx) => tx.instances.fenceInstance(peer.id, peer.heartbeatAt, now));
      if (won) fenced.push(peer);
    }
    return fenced;
  }

  /** Marks this instance stopped (a clean stop). */
  async markStopped() {
    const { store, instanceId } = this.deps;
    const now = await this.now();
    await store.withTransaction((tx) => tx.instances.markInstanceStopped(instanceId, now));
  }

  private isDead(instance: { hostname: string; pid: number; heartbeatAt: number }, now: number): boolean {
    if (now - instance.heartbeatAt > this.deps.staleAfterMs) return true;
    // On this host a vanished process is dead at once, whatever its last heartbeat.
    if (this.deps.probeLocalPids === false || instance.hostname !== this.host || instance.pid === process.pid) return false;
    try {
      process.kill(instance.pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
}
