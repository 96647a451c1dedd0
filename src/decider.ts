import { randomUUID } from 'node:crypto';
import type { ApprovalView, Verdict } from './approvals/approval.js';
import { createApprovalCore } from './approvals/core.js';
import { createAuditLog } from './audit/audit.service.js';
import { openStoreAt } from './db/open-store.js';
import { ApprovalBus } from './events/bus.js';
import { silentLogger } from './logger.js';
import { PolicyService, type Principal } from './policy/policy.service.js';
import type { ToolExecutor } from './tools/upstreams.js';

/** A process that decides but never runs a tool. */
const noTools: ToolExecutor = {
  list: () => [],
  get: () => undefined,
  call: () => Promise.reject(new Error('this process runs no tools')),
  onToolsChanged: () => undefined,
};

export interface Decider {
  /** The user `id` as an approver, or undefined when there is no such user. */
  approver(id: string): Promise<Principal | undefined>;
  /** One verdict through the approval core's one `decide` (four-eyes, quorum, the 409s). */
  decide(approver: Principal, ref: string, verdict: Verdict, reason: string): Promise<ApprovalView>;
  close(): Promise<void>;
}

/**
 * A second composition root: decides requests on a gateway's database (a SQLite file or a
 * PostgreSQL URL) from another process, holding no callers and running no tools. Gateways sharing
 * it learn of its decisions only
 * through their change feed. Used by the cross-process tests and the fallback benchmark.
 */
export async function createDecider(database: string, options: { instanceId?: string } = {}): Promise<Decider> {
  const store = await openStoreAt(database);
  const clock = { now: () => Date.now() };
  const instanceId = options.instanceId ?? `decider-${randomUUID()}`;
  const core = createApprovalCore({
    store,
    audit: createAuditLog({ clock, instanceId }),
    bus: new ApprovalBus(),
    policy: await PolicyService.load(store.policy),
    tools: noTools,
    clock,
    ids: { uuid: () => randomUUID() },
    logger: silentLogger,
    instanceId,
    settings: {
      rbacEnabled: true,
      approvalWorkflowEnabled: true,
      approvalTimeoutMs: 300_000,
      maxPending: Number.MAX_SAFE_INTEGER,
      quorum: { HIGH: 1, CRITICAL: 1 },
      allowSelfApproval: false,
      runsTools: false,
    },
  });
  return {
    async approver(id) {
      const user = await store.identity.user(id);
      return user ? { id: user.id, role: user.role, anonymous: false } : undefined;
    },
    decide: (approver, ref, verdict, reason) => core.requests.decide(approver, ref, verdict, reason),
    close: () => store.close(),
  };
}
