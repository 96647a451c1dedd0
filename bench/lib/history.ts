/**
 * Bench setup only: builds a database that looks like one that has served for a long time, by
 * bulk-inserting rows through the store's own statements (one transaction per 50,000 rows).
 * History: `tool.executed` audit events, and one decided request (with its decision and three
 * audit events) per 10 events. Pending: async requests far from expiry, held by no instance.
 * The history rows carry a well-formed but not verifiable hash chain; the gate only reads the
 * last row's seq and hash to chain the next event.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Tokens } from './procs.js';
import type { ApprovalRecord } from '../../src/approvals/approval.js';
import type { Transaction } from '../../src/core/persistence.js';
import { seedDatabase } from '../../src/db/seed.js';
import { SqliteStore } from '../../src/db/sqlite-store.js';

const BATCH = 50_000;

export interface HistoryDb {
  path: string;
  tokens: Tokens;
  /** Grows the audit log to `auditRows` events (and the decided requests with it). */
  growTo(auditRows: number): Promise<{ auditRows: number; requests: number; pending: number; seconds: number }>;
  addPending(count: number): Promise<void>;
  close(): Promise<void>;
}

export async function createHistoryDb(path: string): Promise<HistoryDb> {
  const store = SqliteStore.open(path);
  const seeded = await seedDatabase(store, { now: Date.now() });
  const token = (user: string) => seeded.find((t) => t.user === user)?.token ?? '';
  const historyInstance = 'bench-history';
  const start = Date.now() - 90 * 24 * 3600 * 1000;
  let requests = 0;
  let pending = 0;
  const request = (id: string, args: string, fields: Partial<ApprovalRecord>): ApprovalRecord => ({
    id,
    shortId: id.slice(0, 8),
    tool: 'write_file',
    arguments: args,
    requesterId: 'dev_user',
    requesterRole: 'developer',
    tokenId: null,
    sensitivity: 'HIGH',
    mode: 'wait',
    status: 'pending',
    statusReason: null,
    requiredApprovals: 1,
    instanceId: null,
    requestedAt: 0,
    expiresAt: 0,
    decidedAt: null,
    executionStatus: 'none',
    executionInstanceId: null,
    executionStartedAt: null,
    executionFinishedAt: null,
    executionError: null,
    result: null,
    callHash: null,
    policyVersion: null,
    grantId: null,
    ...fields,
  });
  const event = async (tx: Transaction, e: { seq: number; at: number; actor: string; action: string; tool: string; requestId: string | null; status: string; details: string; prevHash: string }) => {
    const hash = createHash('sha256').update(e.prevHash).update(String(e.seq)).digest('hex');
    const { seq, ...fields } = e;
    await tx.audit.insertAudit({ ...fields, durationMs: 1, httpRequestId: randomUUID(), instanceId: historyInstance, chain: historyInstance, chainSeq: seq, hash });
    return hash;
  };

  const appendEvents = async (count: number) => {
    let { seq, hash } = (await store.audit.lastAudit()) ?? { seq: 0, hash: '0'.repeat(64) };
    const target = seq + count;
    while (seq < target) {
      const end = Math.min(target, seq + BATCH);
      await store.withTransaction(async (tx) => {
        for (; seq < end; ) {
          const at = start + seq * 5;
          if (seq % 10 === 9 && seq + 3 < end) {
            // A decided, executed HIGH request: requested, approved, executed.
            const id = randomUUID();
            const args = JSON.stringify({ path: `history/${seq}.txt`, content: 'x' });
            await tx.approvals.insertRequest(
              request(id, args, {
                status: 'approved',
                statusReason: 'ok',
                instanceId: historyInstance,
                requestedAt: at,
                expiresAt: at + 300_000,
                decidedAt: at + 2,
                executionStatus: 'succeeded',
                executionInstanceId: historyInstance,
                executionStartedAt: at + 2,
                executionFinishedAt: at + 3,
                result: '{"content":[]}',
              }),
            );
            await tx.approvals.insertDecision({ requestId: id, approverId: 'admin_user', verdict: 'approve', reason: 'ok', now: at + 2 });
            requests++;
            for (const [action, status] of [['approval.requested', 'pending'], ['approval.approved', 'approved'], ['execution.succeeded', 'succeeded']] as const) {
              seq++;
              const actor = action === 'approval.approved' ? 'admin_user' : 'dev_user';
              hash = await event(tx, { seq, at, actor, action, tool: 'write_file', requestId: id, status, details: '{}', prevHash: hash });
            }
          } else {
            seq++;
            const details = '{"arguments":{"message":"hello"},"sensitivity":"LOW"}';
            hash = await event(tx, { seq, at, actor: 'dev_user', action: 'tool.executed', tool: 'echo', requestId: null, status: 'succeeded', details, prevHash: hash });
          }
        }
      });
    }
  };

  return {
    path,
    tokens: { guest: token('guest_user'), dev: token('dev_user'), admin: token('admin_user') },
    async growTo(auditRows) {
      const t0 = Date.now();
      const have = (await store.audit.lastAudit())?.seq ?? 0;
      if (auditRows > have) await appendEvents(auditRows - have);
      store.admin.checkpointWal();
      return { auditRows: (await store.audit.lastAudit())?.seq ?? 0, requests, pending, seconds: (Date.now() - t0) / 1000 };
    },
    async addPending(count) {
      const now = Date.now();
      await store.withTransaction(async (tx) => {
        for (let i = 0; i < count; i++) {
          const id = randomUUID();
          const args = JSON.stringify({ path: `pending/${i}.txt`, content: 'x' });
          await tx.approvals.insertRequest(request(id, args, { mode: 'async', requestedAt: now - count + i, expiresAt: now + 7 * 24 * 3600 * 1000 }));
        }
      });
      pending += count;
    },
    close: () => store.close(),
  };
}
