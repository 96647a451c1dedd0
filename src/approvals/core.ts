import type { AuditLog } from '../audit/audit.service.js';
import type { Persistence } from '../core/persistence.js';
import type { ApprovalBus } from '../events/bus.js';
import type { Logger } from '../logger.js';
import { APPROVAL_MANAGE, type PolicyService } from '../policy/policy.service.js';
import type { ToolExecutor } from '../tools/upstreams.js';
import type { Sensitivity, Verdict } from './approval.js';
import { Executor } from './executor.js';
import { Gate } from './gate.js';
import { Requests, type RequestSettings } from './requests.js';
import { ApprovalViews } from './views.js';
import { Waiters } from './waiters.js';
import type { ReceiptSigner } from '../receipts/receipts.js';

/*
 * The approval core, a one-way stack (each file imports only those below it):
 *
 *   gate.ts        authorise, then run now or ask, wait and run          → GateOutcome values
 *   requests.ts    open (pending caps), decide, cancel, expire; timers
 *   executor.ts    claim (and claimFor a waiter), run, record; refusals, abandons, interrupts
 *   waiters.ts     callers parked in this process: waits, long-polls, shutdown
 *   views.ts       requests as callers and approvers see them (reads only)
 *   steps.ts       a machine step written through the persistence port
 *   machine.ts     the rules: pure transitions, the audit actions they write, the feed vocabulary
 */

export interface Clock {
  now(): number;
}

export interface IdSource {
  uuid(): string;
}

/** Hooks for counters; all optional so tests and a decider need none. */
export interface ApprovalMetrics {
  decided?(verdict: Verdict | 'expired' | 'cancelled', sensitivity: Sensitivity, waitedMs: number): void;
  upstreamCall?(tool: string, outcome: 'ok' | 'tool_error' | 'error', ms: number): void;
}

export interface ApprovalCoreDeps {
  store: Persistence;
  audit: AuditLog;
  bus: ApprovalBus;
  policy: PolicyService;
  tools: ToolExecutor;
  clock: Clock;
  ids: IdSource;
  logger: Logger;
  instanceId: string;
  settings: RequestSettings & {
    rbacEnabled: boolean;
    /** False for processes with no upstreams (a decider on the same database): they decide but never claim runs. */
    runsTools?: boolean | undefined;
  };
  metrics?: ApprovalMetrics | undefined;
  /** Signs the receipts of approved requests (none in a decider). */
  receipts?: ReceiptSigner | undefined;
}

export interface ApprovalCore {
  gate: Gate;
  requests: Requests;
  executor: Executor;
  waiters: Waiters;
  views: ApprovalViews;
  readonly isShuttingDown: boolean;
  /**
   * Cleans up after a gateway that is gone (or this one, at its stop): its waiting callers can
   * never be answered, so their pending requests are cancelled and its approved waits that never
   * started are failed; its running executions are marked `interrupted` and never retried.
   */
  recoverInstance(instanceId: string, reason?: string): Promise<{ cancelled: number; failed: number; interrupted: number }>;
  /** Stops taking calls; every caller waiting here is answered 503 and its request cancelled. Returns how many. */
  shutdown(): Promise<number>;
  /** In-memory holdings, for leak tests and the benchmark. */
  counts(): { expiryTimers: number; localWaiters: number; longPolls: number };
}

/** Wires the core's collaborators. */
export function createApprovalCore(deps: ApprovalCoreDeps): ApprovalCore {
  const { store, audit, bus, clock, logger, instanceId, settings } = deps;
  const views = new ApprovalViews({ store, policy: deps.policy, receipts: deps.receipts });
  const waiters = new Waiters({ bus, views });
  const executor = new Executor({ store, audit, bus, tools: deps.tools, views, waiters, clock, logger, instanceId, settings, metrics: deps.metrics });
  const requests = new Requests({
    store,
    audit,
    bus,
    views,
    executor,
    clock,
    ids: deps.ids,
    logger,
    instanceId,
    settings,
    canApprove: (role) => deps.policy.hasPermission(role, APPROVAL_MANAGE),
    metrics: deps.metrics,
  });
  const gate = new Gate({ store, audit, policy: deps.policy, tools: deps.tools, requests, waiters, executor, logger, settings });

  return {
    gate,
    requests,
    executor,
    waiters,
    views,
    get isShuttingDown() {
      return gate.isShuttingDown;
    },
    async recoverInstance(deadInstanceId, reason = 'gateway restarted') {
      const { pendingWaits, unclaimedWaits, running } = await store.approvals.orphansOf(deadInstanceId);
      let cancelled = 0;
      let failed = 0;
      let interrupted = 0;
      for (const record of pendingWaits) if (await requests.cancel(record.id, 'system', reason)) cancelled++;
      for (const record of unclaimedWaits) {
        await executor.abandon(record.id, `${reason} before the tool ran`);
        failed++;
      }
      for (const record of running) if (await executor.interrupt(record.id, `${reason} while the tool was running; it may or may not have run`)) interrupted++;
      return { cancelled, failed, interrupted };
    },
    async shutdown() {
      gate.close();
      const held = waiters.close();
      for (const waiter of held) {
        try {
          await requests.cancel(waiter.requestId, 'system', 'gateway shutting down');
        } catch (err) {
          logger.error({ err, requestId: waiter.requestId }, 'could not cancel a waiting request at shutdown');
        }
        waiter.end({ kind: 'shutting-down' });
      }
      requests.stopTimers();
      return held.length;
    },
    counts() {
      return { ...requests.counts(), ...waiters.counts() };
    },
  };
}
