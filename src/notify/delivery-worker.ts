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

  /** Something was just committed to the outbox here: look now rather than at the next tick. */
  nudge() {
    if (this.nudged || this.lanes.length === 0) return;
    this.nudged = true;
    setImmediate(() => {
      this.nudged = false;
      this.pump();
    });
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

class Lane {
  inflight = 0;
  private claiming = false;
  private readonly running = new Set<Promise<void>>();

  constructor(
    readonly receiver: Receiver,
    private readonly deps: DeliveryWorkerDeps,
    private readonly signal: AbortSignal,
  ) {}

  pump() {
    if (this.claiming || this.signal.aborted) return;
    const room = this.receiver.concurrency - this.inflight;
    if (room <= 0) return;
    this.claiming = true;
    void this.claim(room).finally(() => (this.claiming = false));
  }

  async settled(): Promise<void> {
    while (this.running.size > 0 || this.claiming) await Promise.allSettled([...this.running, new Promise((r) => setTimeout(r, 5))]);
  }

  private async claim(room: number) {
    const { store, clock, instanceId, logger } = this.deps;
    const now = clock.now();
    let claimed: DeliveryRecord[];
    try {
      claimed = await store.withTransaction((tx) =>
        tx.notify.claimDeliveries({ receiver: this.receiver.name, now, leaseUntil: now + 2 * this.receiver.timeoutMs + 1000, instanceId, limit: room }),
      );
    } catch (err) {
      if (!this.signal.aborted) logger.warn({ err, receiver: this.receiver.name }, 'could not claim notification deliveries');
      return;
    }
    for (const delivery of claimed) {
      this.inflight++;
      const run = this.attempt(delivery).finally(() => {
        this.inflight--;
        this.running.delete(run);
        this.pump();
      });
      this.running.add(run);
    }
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
    metrics?.attempted(this.receiver.name, outcome.status === 'pending' ? 'retry' : outcome.status, performance.now() - started);
    if (outcome.status === 'dead') logger.warn({ receiver: this.receiver.name, delivery: d.id, event: d.eventType, request: d.requestId, attempts: d.attempts, error: outcome.lastError }, 'notification delivery is dead');
    try {
      await store.withTransaction((tx) => tx.notify.finishAttempt(d.id, d.attempts, outcome));
    } catch (err) {
      // Its lease runs out and it is tried again, as a new attempt.
      logger.warn({ err, receiver: this.receiver.name, delivery: d.id }, 'could not record a notification attempt');
    }
  }
}
