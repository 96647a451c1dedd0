/**
 * A second process that decides requests on the same SQLite file through ApprovalService, as
 * another gateway or the CLI would. The gateway under test only learns of these decisions through
 * its polling fallback. IPC: `{type:"decide", id, delayMs}` → after the delay, approve →
 * `{type:"decided", id, committedAt}` where committedAt is process.hrtime.bigint() (CLOCK_MONOTONIC,
 * comparable across processes on one machine) taken right after the transaction committed.
 */
import { randomUUID } from 'node:crypto';
import { ApprovalService } from '../../src/approvals/approvals.service.js';
import { createAuditLog } from '../../src/audit/audit.service.js';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { ApprovalBus } from '../../src/events/bus.js';
import { silentLogger } from '../../src/logger.js';
import { PolicyService } from '../../src/policy/policy.service.js';
import type { ToolExecutor } from '../../src/tools/upstreams.js';

const databasePath = process.env.DATABASE_PATH;
if (!databasePath) throw new Error('DATABASE_PATH is required');
const store = SqliteStore.open(databasePath);
const clock = { now: () => Date.now() };
const instanceId = `bench-decider-${randomUUID()}`;
const noTools: ToolExecutor = { list: () => [], get: () => undefined, call: async () => ({ content: [] }), onToolsChanged: () => undefined };
const approvals = new ApprovalService({
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
    maxPending: 1_000_000,
    quorum: { HIGH: 1, CRITICAL: 1 },
    allowSelfApproval: false,
    runsTools: false,
  },
});
const admin = { id: 'admin_user', role: 'admin', anonymous: false };

process.on('message', (message: { type?: string; id?: string; delayMs?: number }) => {
  if (message?.type === 'stop') {
    void store.close().then(() => process.exit(0));
    return;
  }
  if (message?.type !== 'decide' || !message.id) return;
  const id = message.id;
  setTimeout(async () => {
    try {
      await approvals.decide(admin, id, 'approve', 'approved by the bench decider');
      process.send?.({ type: 'decided', id, committedAt: String(process.hrtime.bigint()) });
    } catch (err) {
      process.send?.({ type: 'decided', id, error: (err as Error).message });
    }
  }, message.delayMs ?? 0);
});
process.on('disconnect', () => {
  void store.close().then(() => process.exit(0));
});
process.send?.({ type: 'ready', url: '', tokens: { guest: '', dev: '', admin: '' } });
