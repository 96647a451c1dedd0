import { describe, expect, it } from 'vitest';
import { ChangeFeed, GAP_PATIENCE_MS } from '../../src/approvals/change-feed.js';
import { ApprovalBus, type ApprovalEvent } from '../../src/events/bus.js';
import { api, startTestGateway, type TestGateway } from '../helpers.js';

/**
 * Another instance's events, written as PostgreSQL can leave them: a seq is taken at insert and
 * the transaction commits later, so a larger seq can be visible before a smaller one.
 */
async function commitEvent(t: TestGateway, seq: number, requestId: string) {
  await t.query(
    `insert into audit_events (seq, at, actor, action, request_id, details, instance_id, chain, chain_seq, prev_hash, hash)
     values (?, ?, 'admin_user', 'approval.requested', ?, '{}', 'elsewhere', 'elsewhere/1', ?, 'p', 'h')`,
    seq,
    Date.now(),
    requestId,
    seq,
  );
}

async function observe(t: TestGateway) {
  let now = 0;
  const bus = new ApprovalBus();
  const seen: string[] = [];
  bus.subscribe((e: ApprovalEvent) => seen.push(e.approval.id));
  const feed = new ChangeFeed({ store: t.gateway.store, bus, views: t.gateway.approvals.views, instanceId: 'observer', monotonicNow: () => now });
  await feed.start();
  const requests: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: { path: `f${i}`, content: 'c' } } });
    expect(res.status).toBe(202);
    requests.push(res.body.approval.id);
  }
  // The gateway's own events are news to the observer too: read them, then start clean.
  await feed.pull();
  seen.length = 0;
  const top = (await t.gateway.store.audit.lastAudit())!.seq;
  return { feed, seen, requests, top, later: (ms: number) => (now += ms) };
}

describe('the change feed', () => {
  it('publishes an event that commits after a larger seq was read, once, whether a hint or the next poll finds it', async () => {
    const t = await startTestGateway();
    try {
      const { feed, seen, requests, top } = await observe(t);
      const [r1, r2, r3, r4] = requests as [string, string, string, string];
      await commitEvent(t, top + 2, r2);
      await commitEvent(t, top + 3, r3);
      expect(await feed.pull()).toBe(2);
      expect(feed.openHoles).toBe(1);
      // The transaction holding top + 1 commits; its hint points at it.
      await commitEvent(t, top + 1, r1);
      expect(await feed.wake({ from: top + 1 })).toBe(1);
      expect(seen).toEqual([r2, r3, r1]);
      expect(feed.openHoles).toBe(0);
      // Nothing twice: not on a poll, not on a repeated hint.
      expect(await feed.pull()).toBe(0);
      expect(await feed.wake({ from: top + 1 })).toBe(0);
      // A hole the next poll finds filled, without any hint.
      await commitEvent(t, top + 5, r4);
      expect(await feed.pull()).toBe(1);
      await commitEvent(t, top + 4, r1);
      expect(await feed.pull()).toBe(1);
      expect(seen).toEqual([r2, r3, r1, r4, r1]);
    } finally {
      await t.close();
    }
  });

  it('gives up on a hole after GAP_PATIENCE_MS (a rolled-back insert) and reads only what is new from then on', async () => {
    const t = await startTestGateway();
    try {
      const { feed, seen, requests, top, later } = await observe(t);
      await commitEvent(t, top + 2, requests[0]!);
      expect(await feed.pull()).toBe(1);
      later(GAP_PATIENCE_MS - 1);
      await feed.pull();
      expect(feed.openHoles).toBe(1);
      later(1);
      await feed.pull();
      expect(feed.openHoles).toBe(0);
      await commitEvent(t, top + 1, requests[1]!);
      expect(await feed.pull()).toBe(0);
      expect(seen).toEqual([requests[0]]);
    } finally {
      await t.close();
    }
  });

  it('serves calls made during a read with one more read after it, and never reads twice at once', async () => {
    const t = await startTestGateway();
    try {
      const { feed, seen, requests, top } = await observe(t);
      await commitEvent(t, top + 1, requests[0]!);
      await commitEvent(t, top + 2, requests[1]!);
      // The first call reads both; the two made during it share one more read, which finds nothing new.
      const [a, b, c] = await Promise.all([feed.pull(), feed.wake({ from: top + 2 }), feed.pull()]);
      expect([a, b, c]).toEqual([2, 0, 0]);
      expect(seen).toEqual([requests[0], requests[1]]);
    } finally {
      await t.close();
    }
  });
});
