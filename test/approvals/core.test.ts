import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApprovalCore, type ApprovalCore } from '../../src/approvals/core.js';
import { outcomeError } from '../../src/approvals/gate.js';
import { createAuditLog } from '../../src/audit/audit.service.js';
import { seedDatabase } from '../../src/db/seed.js';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { ApprovalBus } from '../../src/events/bus.js';
import { silentLogger } from '../../src/logger.js';
import { PolicyService, type Principal } from '../../src/policy/policy.service.js';
import type { ToolExecutor } from '../../src/tools/upstreams.js';
import { tempDir } from '../helpers.js';

/**
 * The approval core alone, over a real SQLite file with the real migrations, a tool executor in
 * this process and an injected clock: no server, no sockets, no child process.
 */
const dev: Principal = { id: 'dev_user', role: 'developer', anonymous: false };
const admin: Principal = { id: 'admin_user', role: 'admin', anonymous: false };
const TIMEOUT_MS = 60_000;

describe('the approval core', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: SqliteStore;
  let core: ApprovalCore;
  let now: number;
  const ran: { tool: string; args: unknown }[] = [];

  async function build(quorum = 1) {
    const clock = { now: () => now };
    const tools: ToolExecutor = {
      list: () => [],
      get: (name) => (name === 'write_file' || name === 'list_files' ? { name, inputSchema: { type: 'object' } } : undefined) as ReturnType<ToolExecutor['get']>,
      call: async (tool, args) => {
        ran.push({ tool, args });
        return { content: [{ type: 'text', text: `ran ${tool}` }] };
      },
      onToolsChanged: () => undefined,
    };
    return createApprovalCore({
      store,
      audit: createAuditLog({ clock, instanceId: 'core-test' }),
      bus: new ApprovalBus(),
      policy: await PolicyService.load(store.policy),
      tools,
      clock,
      ids: { uuid: () => crypto.randomUUID() },
      logger: silentLogger,
      instanceId: 'core-test',
      settings: {
        rbacEnabled: true,
        approvalWorkflowEnabled: true,
        approvalTimeoutMs: TIMEOUT_MS,
        maxPending: 50,
        quorum: { HIGH: quorum, CRITICAL: quorum },
        allowSelfApproval: false,
      },
    });
  }

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    now = Date.UTC(2026, 10, 23, 12);
    ran.length = 0;
    dir = tempDir();
    store = SqliteStore.open(join(dir.path, 'toolgate.db'));
    await seedDatabase(store, { now });
    core = await build();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await core.shutdown();
    await store.close();
    rmSync(dir.path, { recursive: true, force: true });
  });

  /** A HIGH call parked until decided, and its request once it is pending. */
  async function waitingCall(options: { signal?: AbortSignal } = {}) {
    let pending!: (id: string) => void;
    const opened = new Promise<string>((resolve) => (pending = resolve));
    const outcome = core.gate.callTool(dev, 'write_file', { path: 'a' }, 'wait', { ...options, onPending: (a) => pending(a.id) });
    return { outcome, id: await opened };
  }

  it('runs a tool that needs no approval at once: outcome ran', async () => {
    expect(await core.gate.callTool(dev, 'list_files', {}, 'wait')).toMatchObject({ kind: 'ran', sensitivity: 'LOW' });
    expect(ran).toEqual([{ tool: 'list_files', args: {} }]);
  });

  it('holds a HIGH call until approved, then runs it once: outcome approved-and-ran', async () => {
    const call = await waitingCall();
    await core.requests.decide(admin, call.id, 'approve', 'fine');
    const outcome = await call.outcome;
    expect(outcome).toMatchObject({ kind: 'approved-and-ran', approval: { status: 'approved', execution: { status: 'succeeded' } } });
    expect(outcomeError(outcome)).toBeNull();
    expect(ran).toEqual([{ tool: 'write_file', args: { path: 'a' } }]);
  });

  it('answers a rejection as the outcome rejected, naming the reason, and never runs the tool', async () => {
    const call = await waitingCall();
    await core.requests.decide(admin, call.id, 'reject', 'not today');
    const outcome = await call.outcome;
    expect(outcome).toMatchObject({ kind: 'rejected', approval: { status: 'rejected' } });
    expect(outcomeError(outcome)).toMatchObject({ code: 'approval_rejected', status: 403, message: expect.stringContaining('not today') });
    expect(ran).toEqual([]);
  });

  it('expires a request on its timer at the deadline: outcome expired, and a late decision gets 409 not_pending', async () => {
    const call = await waitingCall();
    now += TIMEOUT_MS;
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS);
    const outcome = await call.outcome;
    expect(outcome).toMatchObject({ kind: 'expired', approval: { status: 'expired', statusReason: 'no decision before the timeout' } });
    expect(outcomeError(outcome)).toMatchObject({ code: 'approval_expired', status: 408 });
    await expect(core.requests.decide(admin, call.id, 'approve', 'late')).rejects.toMatchObject({ code: 'not_pending', extra: { status: 'expired' } });
    expect(core.counts()).toEqual({ expiryTimers: 0, localWaiters: 0, longPolls: 0 });
  });

  it('needs two distinct approvals at quorum 2; the second decision by the same approver is already_decided', async () => {
    core = await build(2);
    const call = await waitingCall();
    expect(await core.requests.decide(admin, call.id, 'approve', 'one')).toMatchObject({ status: 'pending' });
    await expect(core.requests.decide(admin, call.id, 'approve', 'again')).rejects.toMatchObject({ code: 'already_decided' });
    await expect(core.requests.decide(dev, call.id, 'approve', 'mine')).rejects.toMatchObject({ code: 'permission_denied' });
    const second = await store.withTransaction(async (tx) => {
      await tx.identity.insertUser({ id: 'admin_two', role: 'admin', now });
      return { id: 'admin_two', role: 'admin', anonymous: false } satisfies Principal;
    });
    expect(await core.requests.decide(second, call.id, 'approve', 'two')).toMatchObject({ status: 'approved' });
    expect(await call.outcome).toMatchObject({ kind: 'approved-and-ran' });
  });

  it('claims the run for the caller waiting here in the approving transaction (the preclaim)', async () => {
    const call = await waitingCall();
    expect(core.waiters.heldHere(call.id)).toMatchObject({ claimed: false });
    await core.requests.decide(admin, call.id, 'approve', 'fine');
    expect(await store.approvals.request(call.id)).toMatchObject({ executionStatus: 'running', executionInstanceId: 'core-test' });
    await call.outcome;
    const actions = (await store.audit.auditPage({ limit: 10 })).filter((e) => e.requestId === call.id).map((e) => e.action);
    expect(actions).toEqual(['execution.succeeded', 'execution.started', 'approval.approved', 'approval.requested']);
  });

  it('cancels the request of a caller that goes away: outcome cancelled, approval_cancelled', async () => {
    const controller = new AbortController();
    const call = await waitingCall({ signal: controller.signal });
    controller.abort();
    const outcome = await call.outcome;
    expect(outcome).toMatchObject({ kind: 'cancelled', shuttingDown: false });
    expect(outcomeError(outcome)?.code).toBe('approval_cancelled');
    expect(await store.approvals.request(call.id)).toMatchObject({ status: 'cancelled', statusReason: 'caller disconnected' });
  });

  it('answers callers waiting at shutdown with the outcome cancelled (shutting_down), and refuses new calls', async () => {
    const call = await waitingCall();
    expect(await core.shutdown()).toBe(1);
    const outcome = await call.outcome;
    expect(outcome).toMatchObject({ kind: 'cancelled', shuttingDown: true, approval: { status: 'cancelled', statusReason: 'gateway shutting down' } });
    expect(outcomeError(outcome)).toMatchObject({ code: 'shutting_down', status: 503 });
    await expect(core.gate.callTool(dev, 'list_files', {}, 'wait')).rejects.toMatchObject({ code: 'shutting_down' });
  });

  it('refuses to run an approved request whose requester was disabled meanwhile: outcome refused, access_revoked', async () => {
    const call = await waitingCall();
    await store.withTransaction((tx) => tx.identity.setUserActive('dev_user', false, now));
    await core.requests.decide(admin, call.id, 'approve', 'fine');
    const outcome = await call.outcome;
    expect(outcome).toMatchObject({ kind: 'refused', approval: { execution: { status: 'failed', error: 'refused: requester disabled' } } });
    expect(outcomeError(outcome)).toMatchObject({ code: 'access_revoked', status: 403 });
    expect(ran).toEqual([]);
  });
});
