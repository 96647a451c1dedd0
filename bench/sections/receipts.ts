import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { callHash } from '../../src/approvals/binding.js';
import { createApprovalCore } from '../../src/approvals/core.js';
import { createAuditLog } from '../../src/audit/audit.service.js';
import { seedDatabase } from '../../src/db/seed.js';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { ApprovalBus } from '../../src/events/bus.js';
import { silentLogger } from '../../src/logger.js';
import { PolicyService, type Principal } from '../../src/policy/policy.service.js';
import { ReceiptSigner, verifyReceipt } from '../../src/receipts/receipts.js';
import { KeyRing } from '../../src/signing/key-ring.js';
import type { ToolExecutor } from '../../src/tools/upstreams.js';
import { summarize, type Summary } from '../lib/stats.js';

/**
 * What binding and signing cost per approval, in one run: the same approval (a decision-only
 * request made, approved, and read back) through the real approval core on a real SQLite file,
 * with receipts signed and without, in alternating rounds; and binding, signing and offline
 * verification alone.
 */
export interface ReceiptsResult {
  approvals: number;
  rounds: number;
  withReceiptMs: Summary;
  withoutReceiptMs: Summary;
  /** Median with receipts / median without. */
  ratio: number;
  bindingUs: Summary;
  signingUs: Summary;
  verifyingUs: Summary;
  argumentsBytes: number;
}

const noTools: ToolExecutor = { list: () => [], get: () => undefined, call: () => Promise.reject(new Error('not here')), onToolsChanged: () => undefined };
const dev: Principal = { id: 'dev_user', role: 'developer', anonymous: false };
const admin: Principal = { id: 'admin_user', role: 'admin', anonymous: false };

export async function receiptsCost(plan: { approvals: number; rounds: number; micro: number }): Promise<ReceiptsResult> {
  const dir = mkdtempSync(join(tmpdir(), 'toolgate-bench-receipts-'));
  const store = SqliteStore.open(join(dir, 'toolgate.db'));
  try {
    await seedDatabase(store, { now: Date.now() });
    const clock = { now: () => Date.now() };
    const keys = KeyRing.openOrCreate(join(dir, 'signing.key'));
    const signer = new ReceiptSigner(keys, { lifetimeMs: 900_000, issuer: 'bench' });
    const policy = await PolicyService.load(store.policy);
    const core = (receipts: ReceiptSigner | undefined) =>
      createApprovalCore({
        store,
        audit: createAuditLog({ clock, instanceId: 'bench' }),
        bus: new ApprovalBus(),
        policy,
        tools: noTools,
        clock,
        ids: { uuid: () => randomUUID() },
        logger: silentLogger,
        instanceId: 'bench',
        settings: { rbacEnabled: true, approvalWorkflowEnabled: true, approvalTimeoutMs: 300_000, maxPending: 1_000_000, quorum: { HIGH: 1, CRITICAL: 1 }, allowSelfApproval: false },
        receipts,
      });
    const signing = core(signer);
    const plain = core(undefined);
    const args = { path: '/srv/app/reports/daily.txt', content: 'x'.repeat(1000), mode: 'overwrite', tags: ['a', 'b', 'c'] };
    const one = async (c: ReturnType<typeof core>) => {
      const started = performance.now();
      const asked = await c.gate.requestDecision(dev, 'write_file', args);
      await c.requests.decide(admin, asked.id, 'approve', 'bench');
      const view = await c.views.viewOf(asked.id);
      if ((view.receipt !== undefined) !== (c === signing)) throw new Error('receipt presence is not what the round expects');
      return performance.now() - started;
    };
    for (let i = 0; i < 50; i++) await one(i % 2 ? signing : plain); // warm-up
    const withReceipt: number[] = [];
    const without: number[] = [];
    for (let r = 0; r < plan.rounds; r++) {
      for (const [c, into] of (r % 2 ? [[plain, without], [signing, withReceipt]] : [[signing, withReceipt], [plain, without]]) as [ReturnType<typeof core>, number[]][]) {
        for (let i = 0; i < plan.approvals; i++) into.push(await one(c));
      }
    }
    const micro = async (fn: () => unknown) => {
      const out: number[] = [];
      for (let i = 0; i < plan.micro; i++) {
        const started = performance.now();
        await fn();
        out.push((performance.now() - started) * 1000);
      }
      return summarize(out);
    };
    const hash = callHash({ tool: 'write_file', arguments: args, requester: 'dev_user', policyVersion: policy.version });
    const subject = () => ({ id: randomUUID(), tool: 'write_file', requesterId: 'dev_user', callHash: hash, policyVersion: policy.version, decidedAt: Date.now(), approvers: ['admin_user'] });
    const jws = await signer.issue(subject());
    const jwks = await signer.jwks();
    const withSummary = summarize(withReceipt);
    const withoutSummary = summarize(without);
    return {
      approvals: plan.approvals,
      rounds: plan.rounds,
      withReceiptMs: withSummary,
      withoutReceiptMs: withoutSummary,
      ratio: withSummary.p50 / withoutSummary.p50,
      bindingUs: await micro(() => callHash({ tool: 'write_file', arguments: args, requester: 'dev_user', policyVersion: policy.version })),
      signingUs: await micro(() => signer.issue(subject())),
      verifyingUs: await micro(() => verifyReceipt(jws, jwks, { arguments: args })),
      argumentsBytes: Buffer.byteLength(JSON.stringify(args)),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
