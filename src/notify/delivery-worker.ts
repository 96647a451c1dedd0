import retry from 'retry';
import type { Persistence } from '../core/persistence.js';
import type { Logger } from '../logger.js';
import type { AttemptOutcome, DeliveryRecord } from './notify-store.js';
import type { NotifyEvent } from './notify.schemas.js';
import type { Receiver, Receivers, SlackApp } from './receivers.js';
import { sendAttempt, type AttemptResult } from './sender.js';

/** Counters the worker reports to (metrics.ts registers them). */
export interface DeliveryMetrics {
  attempted(receiver: string, outcome: 'delivered' | 'retry' | 'dead', ms: number): void;
}

export interface DeliveryWorkerDeps {
  store: Persistence;
  receivers: Receivers;
  slack: SlackApp;
  clock: { now(): number };
  instanceId: string;
  logger: Logger;
  /** How often every receiver's outbox is looked at (deliveries made elsewhere, retries that came due). */
  tickMs: number;
  /** Delivered and dead deliveries older than this are deleted. */
  keepFinishedMs: number;
  metrics?: DeliveryMetrics | undefined;
}

/** The wait after attempt `attempt` failed: exponential from `minMs`, capped at `maxMs`, times a random 1–2 (node-retry's schedule). */
export function retryDelay(attempt: number, policy: Receiver['retry']): number {
  return retry.createTimeout(attempt - 1, { minTimeout: policy.minMs, maxTimeout: policy.maxMs, factor: 2, randomize: true });
}

/** What a failed or successful attempt does to its delivery. */
export function outcomeOf(result: AttemptResult, attempt: number, policy: Receiver['retry'], now: number): AttemptOutcome {
  if (result.ok) return { status: 'delivered', now, lastStatus: result.status, response: result.response ?? null };
  const lastError = (result.error ?? 'failed').slice(0, 500);
  if (result.permanent || attempt >= policy.maxAttempts) return { status: 'dead', now, lastStatus: result.status, lastError };
  return { status: 'pending', now, nextAttemptAt: now + retryDelay(attempt, policy), lastStatus: result.status, lastError };
}

const CLEANUP_EVERY_MS = 5 * 60 * 1000;
/** How long after a change the worker looks at the outbox (see DeliveryWorker.nudge). */
const NUDGE_DELAY_MS = 10;
/** Failed attempts in a row after which a receiver's lane rests (see Lane.noteHealth). */
const RESTS_AFTER_FAILURES = 3;

/**
 * Sends the outbox. Each receiver has a lane of its own, with its own concurrency, so a slow or
 * dead receiver holds up only its own deliveries, never another receiver's, a tool call or a
 * decision (this runs beside them, from the outbox, never on their path). A lane claims due
 * deliveries in a short transaction (a request's events in order: the store never hands out one
 * while an earlier one of the same request is pending), sends each with a timeout, and records how
 * it went: delivered, retried after a backoff, or dead after the last attempt.
 */
export class DeliveryWorker {
  private readonly lanes: Lane[];
  private timer: NodeJS.Timeout | null = null;
  private nudged = false;
  private lastCleanup = 0;
  readonly abort = new AbortController();

  constructor(private readonly deps: DeliveryWorkerDeps) {
    this.lanes = deps.receivers.all.map((r) => new Lane(r, deps, this.abort.signal));
  }

  start() {
    if (this.lanes.length === 0) return;
    this.timer = setInterval(() => this.tick(), this.deps.tickMs);
    this.timer.unref();
    this.tick();
  }

  /**
   * Something was just committed to the outbox here: look soon rather than at the next tick. Soon,
   * not at once: the request that made the change has work of its own to finish first (a decision's
   * caller is being answered, its tool run), and a burst of changes is claimed together.
   */
  nudge() {
    if (this.nudged || this.lanes.length === 0) return;
    this.nudged = true;
    setTimeout(() => {
      this.nudged = false;
      this.pump();
    }, NUDGE_DELAY_MS).unref();
  }

  /** Stops taking deliveries; attempts in flight are cut short (each is retried, under a new attempt id, by whoever runs next). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.abort.abort();
    await Promise.all(this.lanes.map((lane) => lane.settled()));
  }

  /** Deliveries in flight now, per receiver. */
  inFlight(): Record<string, number> {
    return Object.fromEntries(this.lanes.map((lane) => [lane.receiver.name, lane.inflight]));
  }

  private pump() {
    for (const lane of this.lanes) lane.pump();
  }

  private tick() {
    this.pump();
    const now = this.deps.clock.now();
    if (now - this.lastCleanup < CLEANUP_EVERY_MS) return;
    this.lastCleanup = now;
    this.deps.store
      .withTransaction((tx) => tx.notify.deleteFinishedDeliveriesBefore(now - this.deps.keepFinishedMs))
      .catch((err: unknown) => this.deps.logger.warn({ err }, 'could not delete old notification deliveries'));
  }
}

/** An attempt that has ended, waiting to be recorded. */
interface Finished {
  delivery: DeliveryRecord;
  outcome: AttemptOutcome;
}

/**
 * One receiver's deliveries. Its database work is one short transaction at a time (a cycle): it
 * records the attempts that ended since the last cycle and claims what it has room for, so a busy
 * receiver costs a transaction per batch of deliveries, not two per delivery.
 */
class Lane {
  /** Attempts on the wire. */
  inflight = 0;
  private cycling = false;
  private scheduled = false;
  private readonly finished: Finished[] = [];
  /** Attempts in a row that found the receiver unreachable or failing. */
  private failuresInARow = 0;
  /** While the receiver looks down, the lane rests until then (its deliveries wait in the outbox). */
  private restUntil = 0;
  /** Deliveries may be due that no claim has looked for yet. */
  private stale = false;
  private readonly running = new Set<Promise<void>>();

  constructor(
    readonly receiver: Receiver,
    private readonly deps: DeliveryWorkerDeps,
    private readonly signal: AbortSignal,
  ) {}

  /**
   * Runs a cycle if there is anything to do. `fresh`: something may have come due since the last
   * claim (a nudge, a tick). A delivery ending only makes room, so the lane claims again only when
   * the last claim filled every slot or a delivery left the head of its request's line, never to
   * find an empty outbox again and again.
   */
  pump(fresh = true) {
    if (fresh) this.stale = true;
    if (this.cycling) return;
    const claim = this.stale && !this.signal.aborted && this.deps.clock.now() >= this.restUntil && this.inflight < this.receiver.concurrency;
    if (!claim && this.finished.length === 0) return;
    this.cycling = true;
    void this.cycle(claim).finally(() => {
      this.cycling = false;
      if (this.finished.length > 0 || this.stale) this.pump(false);
    });
  }

  /** Records what ended (and claims again) shortly, together with whatever else ends meanwhile. */
  private soon() {
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      this.pump(false);
    }, NUDGE_DELAY_MS).unref();
  }

  async settled(): Promise<void> {
    while (this.running.size > 0 || this.cycling || this.finished.length > 0) {
      this.pump(false);
      await Promise.allSettled([...this.running, new Promise((r) => setTimeout(r, 5))]);
    }
  }

  private async cycle(claim: boolean) {
    const { store, clock, instanceId, logger } = this.deps;
    const done = this.finished.splice(0);
    const room = claim ? this.receiver.concurrency - this.inflight : 0;
    if (claim) this.stale = false;
    const now = clock.now();
    let claimed: DeliveryRecord[] = [];
    try {
      claimed = await store.withTransaction(async (tx) => {
        for (const f of done) await tx.notify.finishAttempt(f.delivery.id, f.delivery.attempts, f.outcome);
        return room > 0 ? tx.notify.claimDeliveries({ receiver: this.receiver.name, now, leaseUntil: now + 2 * this.receiver.timeoutMs + 1000, instanceId, limit: room }) : [];
      });
    } catch (err) {
      // The attempts not recorded run out their lease and are tried again, as new attempts.
      if (!this.signal.aborted) logger.warn({ err, receiver: this.receiver.name }, 'could not record or claim notification deliveries');
      return;
    }
    // A delivery that left the head of its request's line may have let the next one through;
    // a full claim may have left more behind.
    if (done.some((f) => f.outcome.status !== 'pending') || (room > 0 && claimed.length === room)) this.stale = true;
    for (const delivery of claimed) {
      this.inflight++;
      const run = this.attempt(delivery).finally(() => {
        this.inflight--;
        this.running.delete(run);
        this.soon();
      });
      this.running.add(run);
    }
  }

  /**
   * A receiver that failed several attempts in a row is presumed down: the lane stops giving new
   * deliveries their first attempt at once and rests, for longer each time (the receiver's own
   * backoff), then tries again with whatever is due. Its deliveries wait in the outbox meanwhile.
   */
  private noteHealth(result: AttemptResult) {
    if (result.ok) {
      this.failuresInARow = 0;
      this.restUntil = 0;
      return;
    }
    if (result.permanent) return;
    this.failuresInARow++;
    if (this.failuresInARow >= RESTS_AFTER_FAILURES) this.restUntil = this.deps.clock.now() + retryDelay(this.failuresInARow - RESTS_AFTER_FAILURES + 1, this.receiver.retry);
  }

  private async attempt(d: DeliveryRecord) {
    const { store, clock, slack, logger, metrics } = this.deps;
    const started = performance.now();
    let result: AttemptResult;
    try {
      const event = JSON.parse(d.payload) as NotifyEvent;
      const original = this.receiver.channel !== undefined && d.eventType !== 'approval.requested' ? await store.notify.deliveredResponse(this.receiver.name, d.requestId, 'approval.requested') : null;
      result = await sendAttempt(this.receiver, slack, { deliveryId: d.id, attempt: d.attempts, event, payload: d.payload, original }, { now: clock.now(), signal: this.signal });
    } catch (err) {
      result = { ok: false, status: null, body: '', error: (err as Error).message, permanent: false };
    }
    const outcome = outcomeOf(result, d.attempts, this.receiver.retry, clock.now());
    this.noteHealth(result);
    metrics?.attempted(this.receiver.name, outcome.status === 'pending' ? 'retry' : outcome.status, performance.now() - started);
    if (outcome.status === 'dead') logger.warn({ receiver: this.receiver.name, delivery: d.id, event: d.eventType, request: d.requestId, attempts: d.attempts, error: outcome.lastError }, 'notification delivery is dead');
    this.finished.push({ delivery: d, outcome });
  }
}
