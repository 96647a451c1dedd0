import type { Logger } from '../logger.js';
import type { ChangeFeed } from './change-feed.js';
import type { ApprovalCore } from './core.js';
import type { InstanceRegistry } from './instance-registry.js';
import { RETENTION_EVERY_MS } from './retention.js';

/** One background job: what it is, and how often it needs to run (unset: every polling interval). */
export interface PollingJob {
  name: string;
  everyMs?: number;
  /** Skipped on a run that comes late after this process itself was stalled (see `judgesPeers`). */
  judgesPeers?: boolean;
  run(): unknown;
}

/** What the jobs need of this instance's registration (InstanceRegistry). */
export interface Liveness {
  readonly fenced: boolean;
  register(): Promise<void>;
  heartbeat(): Promise<boolean>;
  startHeartbeat(): void;
  stopHeartbeat(): void;
}

export interface PollingJobsDeps {
  registry: Liveness;
  jobs: PollingJob[];
  clock: { now(): number };
  logger: Logger;
  /** APPROVAL_POLLING_INTERVAL: how often the jobs run. */
  pollingIntervalMs: number;
  staleAfterMs: number;
}

/**
 * The background work of a gateway, as named jobs run in order every polling interval
 * (APPROVAL_POLLING_INTERVAL), each skipped until its own interval (`everyMs`) has passed. Every
 * run starts with this instance's heartbeat: a gateway a peer has declared dead (fenced) runs no
 * job at all. The heartbeat also beats on its own, faster timer (InstanceRegistry).
 */
export class PollingJobs {
  private timer: NodeJS.Timeout | null = null;
  private readonly lastRunAt = new Map<string, number>();
  /** When the previous run started (monotonic), to tell when this process itself was stalled. */
  private lastTickAt: number | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly deps: PollingJobsDeps) {}

  get fenced(): boolean {
    return this.deps.registry.fenced;
  }

  get jobNames(): string[] {
    return this.deps.jobs.map((job) => job.name);
  }

  /** Registers this instance, runs every job once at once (recovering after peers already gone), then on the interval. */
  async start() {
    const { registry } = this.deps;
    this.stopped = false;
    await registry.register();
    await this.tick();
    if (registry.fenced || this.stopped) return;
    registry.startHeartbeat();
    this.timer = setInterval(() => {
      if (!this.running) void this.tick();
    }, this.deps.pollingIntervalMs);
    this.timer.unref();
  }

  /** Stops the timers; resolves once a run in progress has finished. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.deps.registry.stopHeartbeat();
    return this.running ?? Promise.resolve();
  }

  /**
   * One run of the jobs that are due (with `everyJob`, of every job, as an operator's or a test's
   * "check now" wants). Runs never overlap: a call during a run waits for it and then runs again
   * (the interval's own tick is skipped instead).
   */
  tick(options: { everyJob?: boolean } = {}): Promise<void> {
    const run = (this.running ?? Promise.resolve())
      .then(() => this.runDue(options.everyJob ?? false))
      .catch((err: unknown) => this.deps.logger.error({ err }, 'background jobs failed'));
    this.running = run;
    void run.finally(() => {
      if (this.running === run) this.running = null;
    });
    return run;
  }

  private async runDue(everyJob: boolean) {
    const { registry, clock, logger } = this.deps;
    // Heartbeat first: a fenced instance must not recover, expire or run anything.
    if (!(await registry.heartbeat())) return;
    const tickAt = performance.now();
    // This process was itself stalled (a blocked event loop, a paused VM): every peer's heartbeat
    // looks old to it for now. Judge them on a later run, once they had time to beat.
    const stalled = this.lastTickAt !== null && tickAt - this.lastTickAt > this.deps.staleAfterMs / 2;
    this.lastTickAt = tickAt;
    for (const job of this.deps.jobs) {
      if (registry.fenced) return;
      if (job.judgesPeers && stalled) continue;
      const now = clock.now();
      const last = this.lastRunAt.get(job.name);
      if (!everyJob && job.everyMs !== undefined && last !== undefined && now - last < job.everyMs) continue;
      this.lastRunAt.set(job.name, now);
      try {
        await job.run();
      } catch (err) {
        logger.error({ err, job: job.name }, 'background job failed');
      }
    }
  }
}

export interface GatewayJobsDeps {
  registry: InstanceRegistry;
  core: ApprovalCore;
  feed: ChangeFeed;
  /** How often the change feed polls when wake-up hints bring changes at once (unset: every interval). */
  feedEveryMs?: number | undefined;
  policy: { refresh(): unknown };
  retention: { run(): unknown };
  /** Re-checks every approver socket's user and role (a user disabled elsewhere loses the socket within an interval). */
  revalidateSessions: () => unknown;
  logger: Logger;
}

/** A gateway's background jobs, in the order each run takes them. */
export function gatewayJobs(deps: GatewayJobsDeps): PollingJob[] {
  const { registry, core, logger } = deps;
  return [
    {
      name: 'recover-dead-instances',
      judgesPeers: true,
      run: async () => {
        // Fenced first: from then on the dead peer's own heartbeat fails, so it cannot go on
        // serving callers whose requests are about to be cancelled.
        for (const peer of await registry.fenceDeadPeers()) {
          const outcome = await core.recoverInstance(peer.id);
          logger.warn({ instance: peer.id, ...outcome }, 'recovered after a gateway instance that stopped heartbeating');
        }
      },
    },
    { name: 'change-feed', ...(deps.feedEveryMs ? { everyMs: deps.feedEveryMs } : {}), run: () => deps.feed.pull() },
    { name: 'expire-overdue', run: () => core.requests.expireDue() },
    { name: 'run-approved-async', run: () => core.executor.runApprovedAsync() },
    { name: 'refresh-policy', run: () => deps.policy.refresh() },
    { name: 'revalidate-approver-sockets', run: () => deps.revalidateSessions() },
    { name: 'retention', everyMs: RETENTION_EVERY_MS, run: () => deps.retention.run() },
  ];
}
