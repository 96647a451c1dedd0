/**
 * The notification part of the store contract (the outbox, escalation markers, Slack links),
 * written against the port alone and run on both stores beside `storeContract`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Persistence } from '../../src/core/persistence.js';
import type { NewDelivery } from '../../src/notify/notify-store.js';
import type { StoreFactory } from './contract.js';
import { aRequest, seedPeople, T0, uuid } from './records.js';

const LEASE = 60_000;

function aDelivery(n: number, fields: Partial<NewDelivery> = {}): NewDelivery {
  return { id: `d-${n}`, eventId: `e-${n}`, eventType: 'approval.requested', receiver: 'hooks', requestId: uuid(1), payload: `{"n":${n}}`, createdAt: T0 + n, ...fields };
}

export function notifyStoreContract(name: string, factory: StoreFactory) {
  describe(`store contract, notifications: ${name}`, () => {
    const opened: Persistence[] = [];
    const fresh = async () => {
      const store = await factory.fresh();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of opened.splice(0).reverse()) await store.close();
    });
    const claim = (store: Persistence, now: number, limit = 10, receiver = 'hooks', instanceId = 'i1') =>
      store.withTransaction((tx) => tx.notify.claimDeliveries({ receiver, now, leaseUntil: now + LEASE, instanceId, limit }));

    it('keeps deliveries only when their transaction commits', async () => {
      const store = await fresh();
      await expect(
        store.withTransaction(async (tx) => {
          await tx.notify.insertDeliveries([aDelivery(1)]);
          throw new Error('the change they announce failed');
        }),
      ).rejects.toThrow('failed');
      expect(await store.notify.deliveries({ limit: 10 })).toEqual([]);
      await store.withTransaction((tx) => tx.notify.insertDeliveries([aDelivery(1)]));
      expect(await store.notify.deliveries({ limit: 10 })).toEqual([
        expect.objectContaining({ id: 'd-1', eventId: 'e-1', status: 'pending', attempts: 0, nextAttemptAt: T0 + 1, lastError: null, deliveredAt: null }),
      ]);
    });

    it('claims due deliveries oldest first, counts the attempt, and hides a claimed one until its lease ends', async () => {
      const store = await fresh();
      await store.withTransaction((tx) => tx.notify.insertDeliveries([aDelivery(1, { requestId: uuid(1) }), aDelivery(2, { requestId: uuid(2) }), aDelivery(3, { requestId: uuid(3), receiver: 'other' })]));
      const first = await claim(store, T0 + 10, 1);
      expect(first.map((d) => [d.id, d.attempts, d.nextAttemptAt, d.claimedBy])).toEqual([['d-1', 1, T0 + 10 + LEASE, 'i1']]);
      expect((await claim(store, T0 + 10)).map((d) => d.id)).toEqual(['d-2']);
      expect(await claim(store, T0 + 20)).toEqual([]);
      // After the lease the same delivery is claimed again, as its next attempt.
      expect((await claim(store, T0 + 10 + LEASE)).map((d) => [d.id, d.attempts])).toEqual([['d-1', 2], ['d-2', 2]]);
      expect((await claim(store, T0 + 10, 10, 'other')).map((d) => d.id)).toEqual(['d-3']);
    });

    it("never hands out a request's later delivery while an earlier one to the same receiver is pending", async () => {
      const store = await fresh();
      await store.withTransaction((tx) =>
        tx.notify.insertDeliveries([aDelivery(1), aDelivery(2, { eventType: 'approval.resolved' }), aDelivery(3, { receiver: 'other', eventType: 'approval.resolved' })]),
      );
      const [one] = await claim(store, T0 + 10);
      expect(one!.id).toBe('d-1');
      // Failed, to be retried later: the resolution still waits behind it.
      await store.withTransaction((tx) => tx.notify.finishAttempt('d-1', 1, { status: 'pending', now: T0 + 11, nextAttemptAt: T0 + 1000, lastStatus: 503, lastError: 'HTTP 503' }));
      expect(await claim(store, T0 + 500)).toEqual([]);
      const delivered = await store.withTransaction(async (tx) => {
        const [again] = await tx.notify.claimDeliveries({ receiver: 'hooks', now: T0 + 1000, leaseUntil: T0 + 1000 + LEASE, instanceId: 'i1', limit: 10 });
        return tx.notify.finishAttempt(again!.id, again!.attempts, { status: 'delivered', now: T0 + 1001, lastStatus: 200 });
      });
      expect(delivered).toMatchObject({ id: 'd-1', status: 'delivered', attempts: 2, deliveredAt: T0 + 1001, lastError: null });
      expect((await claim(store, T0 + 1002)).map((d) => d.id)).toEqual(['d-2']);
      // Another receiver's deliveries of the same request never waited.
      expect((await claim(store, T0 + 10, 10, 'other')).map((d) => d.id)).toEqual(['d-3']);
    });

    it('lets a dead delivery stop holding up the ones after it', async () => {
      const store = await fresh();
      await store.withTransaction((tx) => tx.notify.insertDeliveries([aDelivery(1), aDelivery(2, { eventType: 'approval.resolved' })]));
      await claim(store, T0 + 10, 1);
      await store.withTransaction((tx) => tx.notify.finishAttempt('d-1', 1, { status: 'dead', now: T0 + 11, lastStatus: 404, lastError: 'HTTP 404' }));
      expect((await claim(store, T0 + 12)).map((d) => d.id)).toEqual(['d-2']);
      expect(await store.notify.deliveries({ limit: 10, status: 'dead' })).toEqual([expect.objectContaining({ id: 'd-1', lastStatus: 404, lastError: 'HTTP 404' })]);
    });

    it('records an attempt only while it is the latest attempt of a pending delivery', async () => {
      const store = await fresh();
      await store.withTransaction((tx) => tx.notify.insertDeliveries([aDelivery(1)]));
      await claim(store, T0 + 10);
      await claim(store, T0 + 10 + LEASE);
      // Attempt 1 outlived its lease; attempt 2 is the one that counts.
      expect(await store.withTransaction((tx) => tx.notify.finishAttempt('d-1', 1, { status: 'delivered', now: T0, lastStatus: 200 }))).toBeUndefined();
      expect(await store.withTransaction((tx) => tx.notify.finishAttempt('d-1', 2, { status: 'delivered', now: T0, lastStatus: 200, response: '{"ts":"1"}' }))).toMatchObject({ status: 'delivered' });
      expect(await store.withTransaction((tx) => tx.notify.finishAttempt('d-1', 2, { status: 'dead', now: T0, lastStatus: 500, lastError: 'late' }))).toBeUndefined();
      expect(await store.notify.deliveredResponse('hooks', uuid(1), 'approval.requested')).toBe('{"ts":"1"}');
      expect(await store.notify.deliveredResponse('other', uuid(1), 'approval.requested')).toBeNull();
    });

    it('hands each delivery to one of two stores claiming at once', async () => {
      const store = await fresh();
      const other = await factory.another(store);
      opened.push(other);
      await store.withTransaction((tx) => tx.notify.insertDeliveries(Array.from({ length: 30 }, (_, i) => aDelivery(i + 1, { requestId: uuid(i + 1) }))));
      const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => claim(i % 2 ? other : store, T0 + 100, 2, 'hooks', `i${i % 2}`)));
      const ids = claims.flat().map((d) => d.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(30);
      expect(claims.flat().every((d) => d.attempts === 1)).toBe(true);
    });

    it('counts deliveries by receiver and status, and deletes only finished old ones', async () => {
      const store = await fresh();
      await store.withTransaction((tx) => tx.notify.insertDeliveries([aDelivery(1, { requestId: uuid(1) }), aDelivery(2, { requestId: uuid(2) }), aDelivery(3, { requestId: uuid(3), createdAt: T0 + 5000 })]));
      for (const d of await claim(store, T0 + 10, 1)) await store.withTransaction((tx) => tx.notify.finishAttempt(d.id, d.attempts, { status: 'delivered', now: T0 + 11, lastStatus: 200 }));
      expect((await store.notify.deliveryCounts()).sort((a, b) => a.status.localeCompare(b.status))).toEqual([
        { receiver: 'hooks', status: 'delivered', count: 1 },
        { receiver: 'hooks', status: 'pending', count: 2 },
      ]);
      expect(await store.withTransaction((tx) => tx.notify.deleteFinishedDeliveriesBefore(T0 + 1000))).toBe(1);
      expect((await store.notify.deliveries({ limit: 10 })).map((d) => d.id)).toEqual(['d-3', 'd-2']);
    });

    it('escalates a request once, and offers only pending, unescalated requests of the sensitivity that are due', async () => {
      const store = await fresh();
      await store.withTransaction(async (tx) => {
        await tx.approvals.insertRequest(aRequest(uuid(1), { requestedAt: T0 }));
        await tx.approvals.insertRequest(aRequest(uuid(2), { requestedAt: T0 + 100 }));
        await tx.approvals.insertRequest(aRequest(uuid(3), { requestedAt: T0, sensitivity: 'CRITICAL' }));
        await tx.approvals.insertRequest(aRequest(uuid(4), { requestedAt: T0, status: 'rejected', decidedAt: T0 }));
      });
      expect((await store.notify.dueForEscalation('HIGH', T0 + 50, 10)).map((r) => r.id)).toEqual([uuid(1)]);
      expect(await store.withTransaction((tx) => tx.notify.markEscalated(uuid(1), T0 + 60))).toBe(true);
      expect(await store.withTransaction((tx) => tx.notify.markEscalated(uuid(1), T0 + 61))).toBe(false);
      expect((await store.notify.dueForEscalation('HIGH', T0 + 200, 10)).map((r) => r.id)).toEqual([uuid(2)]);
      expect((await store.notify.dueForEscalation('CRITICAL', T0 + 200, 10)).map((r) => r.id)).toEqual([uuid(3)]);
    });

    it('links one Slack user to one toolgate user, replacing earlier links, and forgets the link with the user', async () => {
      const store = await fresh();
      await seedPeople(store);
      await store.withTransaction((tx) => tx.notify.linkSlack({ slackUserId: 'U1', userId: 'approver_a', createdAt: T0 }));
      expect(await store.notify.slackLinkOf('U1')).toEqual({ slackUserId: 'U1', userId: 'approver_a', createdAt: T0 });
      // The user's new Slack id replaces the old; the Slack id moved to another user leaves the first.
      await store.withTransaction((tx) => tx.notify.linkSlack({ slackUserId: 'U2', userId: 'approver_a', createdAt: T0 + 1 }));
      expect(await store.notify.slackLinkOf('U1')).toBeUndefined();
      await store.withTransaction((tx) => tx.notify.linkSlack({ slackUserId: 'U2', userId: 'approver_b', createdAt: T0 + 2 }));
      expect(await store.notify.slackLinks()).toEqual([{ slackUserId: 'U2', userId: 'approver_b', createdAt: T0 + 2 }]);
      expect(await store.withTransaction((tx) => tx.notify.unlinkSlack('approver_a'))).toBeUndefined();
      await store.withTransaction((tx) => tx.notify.linkSlack({ slackUserId: 'U3', userId: 'approver_c', createdAt: T0 + 3 }));
      expect(await store.withTransaction((tx) => tx.notify.unlinkSlack('approver_b'))).toBe('U2');
      await store.withTransaction((tx) => tx.identity.deleteUsersAndTokens());
      expect(await store.notify.slackLinks()).toEqual([]);
    });
  });
}
