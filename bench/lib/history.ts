/**
 * Bench setup only: builds a database that looks like one that has served for a long time, by
 * bulk-inserting rows through the store's SQLite handle (one transaction per 50,000 rows).
 * History: `tool.executed` audit events, and one decided request (with its decision and three
 * audit events) per 10 events. Pending: async requests far from expiry, held by no instance.
 * The history rows carry a well-formed but not verifiable hash chain; the gate only reads the
 * last row's seq and hash to chain the next event.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Tokens } from './procs.js';
import { openDatabase } from '../../src/db/client.js';
import { seedDatabase } from '../../src/db/seed.js';
import { Store } from '../../src/db/store.js';

const BATCH = 50_000;

export interface HistoryDb {
  path: string;
  tokens: Tokens;
  /** Grows the audit log to `auditRows` events (and the decided requests with it). */
  growTo(auditRows: number): { auditRows: number; requests: number; pending: number; seconds: number };
  addPending(count: number): void;
  close(): void;
}

export function createHistoryDb(path: string): HistoryDb {
  const handle = openDatabase(path);
  const store = new Store(handle);
  const seeded = seedDatabase(store, { now: Date.now() });
  const token = (user: string) => seeded.find((t) => t.user === user)?.token ?? '';
  const sqlite = store.sqlite;
  const insertAudit = sqlite.prepare(
    `insert into audit_events (seq, at, actor, action, tool, request_id, status, duration_ms, details, http_request_id, instance_id, prev_hash, hash)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertRequest = sqlite.prepare(
    `insert into approval_requests (id, short_id, tool, arguments, requester_id, requester_role, sensitivity, mode, status, status_reason,
       required_approvals, instance_id, requested_at, expires_at, decided_at, execution_status, execution_instance_id,
       execution_started_at, execution_finished_at, result)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertDecision = sqlite.prepare(`insert into approval_decisions (request_id, approver_id, verdict, reason, decided_at) values (?, ?, ?, ?, ?)`);
  const last = () => sqlite.prepare('select seq, hash from audit_events order by seq desc limit 1').get() as { seq: number; hash: string } | undefined;
  const historyInstance = 'bench-history';
  const start = Date.now() - 90 * 24 * 3600 * 1000;
  let requests = 0;
  let pending = 0;

  const appendEvents = (count: number) => {
    let { seq, hash } = last() ?? { seq: 0, hash: '0'.repeat(64) };
    const target = seq + count;
    while (seq < target) {
      const end = Math.min(target, seq + BATCH);
      sqlite.transaction(() => {
        for (; seq < end; ) {
          const at = start + seq * 5;
          if (seq % 10 === 9 && seq + 3 < end) {
            // A decided, executed HIGH request: requested, approved, executed.
            const id = randomUUID();
            const args = JSON.stringify({ path: `history/${seq}.txt`, content: 'x' });
            insertRequest.run(id, id.slice(0, 8), 'write_file', args, 'dev_user', 'developer', 'HIGH', 'wait', 'approved', 'ok', 1, historyInstance, at, at + 300_000, at + 2, 'succeeded', historyInstance, at + 2, at + 3, '{"content":[]}');
            insertDecision.run(id, 'admin_user', 'approve', 'ok', at + 2);
            requests++;
            for (const [action, status] of [['approval.requested', 'pending'], ['approval.approved', 'approved'], ['execution.succeeded', 'succeeded']] as const) {
              seq++;
              const next = createHash('sha256').update(hash).update(String(seq)).digest('hex');
              insertAudit.run(seq, at, action === 'approval.approved' ? 'admin_user' : 'dev_user', action, 'write_file', id, status, 1, '{}', randomUUID(), historyInstance, hash, next);
              hash = next;
            }
          } else {
            seq++;
            const next = createHash('sha256').update(hash).update(String(seq)).digest('hex');
            insertAudit.run(seq, at, 'dev_user', 'tool.executed', 'echo', null, 'succeeded', 1, '{"arguments":{"message":"hello"},"sensitivity":"LOW"}', randomUUID(), historyInstance, hash, next);
            hash = next;
          }
        }
      })();
    }
  };

  return {
    path,
    tokens: { guest: token('guest_user'), dev: token('dev_user'), admin: token('admin_user') },
    growTo(auditRows) {
      const t0 = Date.now();
      const have = last()?.seq ?? 0;
      if (auditRows > have) appendEvents(auditRows - have);
      sqlite.pragma('wal_checkpoint(TRUNCATE)');
      return { auditRows: last()?.seq ?? 0, requests, pending, seconds: (Date.now() - t0) / 1000 };
    },
    addPending(count) {
      const now = Date.now();
      sqlite.transaction(() => {
        for (let i = 0; i < count; i++) {
          const id = randomUUID();
          insertRequest.run(id, id.slice(0, 8), 'write_file', JSON.stringify({ path: `pending/${i}.txt`, content: 'x' }), 'dev_user', 'developer', 'HIGH', 'async', 'pending', null, 1, null, now - count + i, now + 7 * 24 * 3600 * 1000, null, 'none', null, null, null, null);
        }
      })();
      pending += count;
    },
    close: () => handle.close(),
  };
}
