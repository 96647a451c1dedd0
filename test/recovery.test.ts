// @module-tag process
import { describe, expect, it } from 'vitest';
import { createUserWithToken } from '../src/db/seed.js';
import { api, fixtureToolgateFile, pendingApprovals, startTestGateway, tempDir } from './helpers.js';
import { join } from 'node:path';
import { readFileSync, existsSync } from 'node:fs';

const HIGH_CALL = { arguments: { path: 'notes.txt', content: 'hello' } };

describe('restart recovery on the same database file', () => {
  it('cancels the dead instance\'s pending wait requests, keeps async ones, and runs an approved async request exactly once', async () => {
    const dir = tempDir();
    const counter = join(dir.path, 'count.txt');
    const file = fixtureToolgateFile({ FIXTURE_COUNTER_FILE: counter });
    const first = await startTestGateway({ dir: dir.path, file, upstream: 'stdio', env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 300 });
    const adminToken = first.tokens.admin;
    const devToken = first.tokens.dev;
    try {
      // A wait request (its caller is held by the first instance) and two async requests.
      const waitCall = api(first.url, 'POST', '/tools/write_file/call', { token: devToken, body: HIGH_CALL }).catch((e: Error) => e);
      const asyncA = await api(first.url, 'POST', '/tools/count/call', { token: devToken, body: { arguments: { tag: 'a' } }, headers: { prefer: 'respond-async' } });
      const asyncB = await api(first.url, 'POST', '/tools/count/call', { token: devToken, body: { arguments: { tag: 'b' } }, headers: { prefer: 'respond-async' } });
      await pendingApprovals(first, 3);
      await first.gateway.crash();
      await waitCall;
      await new Promise((r) => setTimeout(r, 350)); // the dead instance's heartbeat goes stale

      const second = await startTestGateway({ dir: dir.path, file, upstream: 'stdio', env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 300 });
      try {
        const pending = (await api(second.url, 'GET', '/api/approvals/pending', { token: adminToken })).body.pending_approvals;
        expect(pending.map((p: { id: string }) => p.id).sort()).toEqual([asyncA.body.approval.id, asyncB.body.approval.id].sort());
        const waitRow = (await second.gateway.store.approvals.listPending(10));
        expect(waitRow.every((r) => r.mode === 'async')).toBe(true);
        const all = (await second.gateway.store.approvals.countByStatus());
        expect(all).toEqual({ pending: 2, cancelled: 1 });

        // Approve A twice over (two approvers racing) — it must still run exactly once.
        const other = await createUserWithToken(second.gateway.store, 'admin_two', 'admin', Date.now());
        await Promise.all([
          api(second.url, 'POST', `/api/approvals/${asyncA.body.approval.id}/approve`, { token: adminToken, body: { reason: 'ok' } }),
          api(second.url, 'POST', `/api/approvals/${asyncA.body.approval.id}/approve`, { token: other, body: { reason: 'ok too' } }),
        ]);
        const done = await api(second.url, 'GET', `/api/approvals/${asyncA.body.approval.id}?wait=10`, { token: devToken });
        expect(done.body.approval.execution.status).toBe('succeeded');
        expect(readFileSync(counter, 'utf8')).toBe('a\n');
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
      dir.remove();
    }
  });

  it('marks an execution that was running when its instance died as interrupted, and never runs it again', async () => {
    const dir = tempDir();
    // Each gateway's upstream counts in its own file: the dead one's child may still finish the
    // first run after the crash, and only a line in the second's file would be a run again.
    const counter = join(dir.path, 'count.txt');
    const counterAfterRestart = join(dir.path, 'count-after-restart.txt');
    const file = fixtureToolgateFile({ FIXTURE_COUNTER_FILE: counter });
    const first = await startTestGateway({ dir: dir.path, file, upstream: 'stdio', env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 300 });
    try {
      const created = await api(first.url, 'POST', '/tools/slow_count/call', {
        token: first.tokens.dev,
        body: { arguments: { tag: 'slow', ms: 1500 } },
        headers: { prefer: 'respond-async' },
      });
      const id = created.body.approval.id;
      await api(first.url, 'POST', `/api/approvals/${id}/approve`, { token: first.tokens.admin, body: { reason: 'go' } });
      expect((await first.gateway.store.approvals.request(id))?.executionStatus).toBe('running');
      await first.gateway.crash();
      await new Promise((r) => setTimeout(r, 350));

      const second = await startTestGateway({
        dir: dir.path,
        file: fixtureToolgateFile({ FIXTURE_COUNTER_FILE: counterAfterRestart }),
        upstream: 'stdio',
        env: { APPROVAL_POLLING_INTERVAL: '0.1' },
        instanceStaleAfterMs: 300,
      });
      try {
        const row = (await second.gateway.store.approvals.request(id))!;
        expect(row.executionStatus).toBe('interrupted');
        expect(row.executionError).toContain('gateway restarted while the tool was running');
        // Wait past the tool's own run time: whatever the old upstream did, nobody ran it a second time.
        await new Promise((r) => setTimeout(r, 1600));
        expect((await second.gateway.store.approvals.request(id))?.executionStatus).toBe('interrupted');
        const runsAfterRestart = existsSync(counterAfterRestart) ? readFileSync(counterAfterRestart, 'utf8').split('\n').filter(Boolean) : [];
        expect(runsAfterRestart).toEqual([]);
        const firstRuns = existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean) : [];
        expect(firstRuns.length).toBeLessThanOrEqual(1); // the one run, if the old child finished it
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
      dir.remove();
    }
  });

  it('lets two gateways share one file without disturbing each other\'s callers', async () => {
    const dir = tempDir();
    const a = await startTestGateway({ dir: dir.path, env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 300 });
    const b = await startTestGateway({ dir: dir.path, env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 300 });
    try {
      const callA = api(a.url, 'POST', '/tools/write_file/call', { token: a.tokens.dev, body: HIGH_CALL });
      const [p] = await pendingApprovals(a);
      // b is alive and heartbeating: it must leave a's waiting caller alone for a while.
      await new Promise((r) => setTimeout(r, 600));
      expect((await b.gateway.store.approvals.request(p.id))?.status).toBe('pending');
      // Decided through b, answered by a (polling fallback).
      const decided = await api(b.url, 'POST', `/api/approvals/${p.id}/approve`, { token: a.tokens.admin, body: { reason: 'ok' } });
      expect(decided.status).toBe(200);
      const res = await callA;
      expect(res.status).toBe(200);
      expect(res.body.approval.execution.status).toBe('succeeded');
    } finally {
      await b.close();
      await a.close();
      dir.remove();
    }
  });
});
