/**
 * The store contract: what every implementation of the persistence port must do, written against
 * the port alone. `storeContract` runs it on one implementation; the SQLite store runs it in
 * test/store/sqlite.test.ts, and any other store (PostgreSQL) runs the same suite.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ApprovalRecord } from '../../src/approvals/approval.js';
import { verifyAuditChain } from '../../src/audit/audit.service.js';
import type { Persistence } from '../../src/core/persistence.js';
import { aGrant, aRequest, anEvent, seedPeople, T0, uuid } from './records.js';
import { appendEvent, approve, createWithinCaps, useGrant, type ScenarioName } from './scenarios.js';

export interface StoreFactory {
  /** A store on a fresh, migrated, empty database. */
  fresh(): Promise<Persistence>;
  /** Another store on the same database as `store` (another gateway): its own connections. */
  another(store: Persistence): Promise<Persistence>;
  /**
   * Another process on the same database as `store` (another gateway on the machine), started and
   * ready; `run` runs a scenario there once per argument list, all at once. Optional.
   */
  elsewhere?(store: Persistence): Promise<{ run(scenario: ScenarioName, calls: unknown[][]): Promise<unknown[]> }>;
}

export function storeContract(name: string, factory: StoreFactory) {
  describe(`store contract: ${name}`, () => {
    const opened: Persistence[] = [];
    const fresh = async () => {
      const store = await factory.fresh();
      opened.push(store);
      return store;
    };
    const another = async (store: Persistence) => {
      const other = await factory.another(store);
      opened.push(other);
      return other;
    };
    afterEach(async () => {
      for (const store of opened.splice(0).reverse()) await store.close();
    });

    describe('transactions', () => {
      it('commits when the callback resolves and returns its value', async () => {
        const store = await fresh();
        const value = await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1)));
          return 42;
        });
        expect(value).toBe(42);
        expect(await store.approvals.request(uuid(1))).toEqual(aRequest(uuid(1)));
      });

      it('rolls back every write when the callback throws, and passes the error on', async () => {
        const store = await fresh();
        const failure = store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1)));
          await tx.audit.insertAudit(anEvent(1, 'genesis'));
          await tx.meta.setMeta('k', 'v', T0);
          throw new Error('changed my mind');
        });
        await expect(failure).rejects.toThrow('changed my mind');
        expect(await store.approvals.request(uuid(1))).toBeUndefined();
        expect(await store.audit.lastAudit()).toBeUndefined();
        expect(await store.meta.getMeta('k')).toBeUndefined();
        // The store is usable after a rollback.
        await store.withTransaction((tx) => tx.approvals.insertRequest(aRequest(uuid(2))));
        expect(await store.approvals.countPending()).toBe(1);
      });

      it('sees its own writes inside the transaction, while reads outside see committed rows only', async () => {
        const store = await fresh();
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        let saw!: (record: ApprovalRecord | undefined) => void;
        const insideSaw = new Promise<ApprovalRecord | undefined>((resolve) => (saw = resolve));
        const open = store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1)));
          saw(await tx.approvals.request(uuid(1)));
          await held;
        });
        // The transaction is open, its insert made and read back, not committed.
        expect((await insideSaw)?.id).toBe(uuid(1));
        expect(await store.approvals.request(uuid(1))).toBeUndefined();
        release();
        await open;
        expect((await store.approvals.request(uuid(1)))?.id).toBe(uuid(1));
      });

      it('runs transactions asked for at once one after another, each seeing the one before', async () => {
        const store = await fresh();
        await store.withTransaction((tx) => tx.meta.setMeta('n', '0', T0));
        await Promise.all(
          Array.from({ length: 20 }, () =>
            store.withTransaction(async (tx) => {
              const n = Number(await tx.meta.getMeta('n'));
              await new Promise((r) => setImmediate(r));
              await tx.meta.setMeta('n', String(n + 1), T0);
            }),
          ),
        );
        expect(await store.meta.getMeta('n')).toBe('20');
      });
    });

    describe('requests', () => {
      it('reads back exactly the record it stored', async () => {
        const store = await fresh();
        const record = aRequest(uuid(1), { tokenId: 7, mode: 'wait', instanceId: 'i1', statusReason: null, arguments: '{"x":[1,2,{"y":null}]}' });
        await store.withTransaction((tx) => tx.approvals.insertRequest(record));
        expect(await store.approvals.request(uuid(1))).toEqual(record);
        expect(await store.approvals.request(uuid(2))).toBeUndefined();
      });

      it('moves the status by compare-and-set: the winner gets the changed record, a stale `from` gets undefined', async () => {
        const store = await fresh();
        await store.withTransaction((tx) => tx.approvals.insertRequest(aRequest(uuid(1))));
        const won = await store.withTransaction((tx) =>
          tx.approvals.transition(uuid(1), 'pending', 'approved', { decidedAt: T0 + 5, statusReason: 'fine', executionStatus: 'pending' }),
        );
        expect(won).toEqual(aRequest(uuid(1), { status: 'approved', decidedAt: T0 + 5, statusReason: 'fine', executionStatus: 'pending' }));
        const lost = await store.withTransaction((tx) => tx.approvals.transition(uuid(1), 'pending', 'rejected', { decidedAt: T0 + 6, statusReason: 'no' }));
        expect(lost).toBeUndefined();
        expect(await store.approvals.request(uuid(1))).toEqual(won);
        expect(await store.withTransaction((tx) => tx.approvals.transition(uuid(9), 'pending', 'cancelled'))).toBeUndefined();
      });

      it('keeps the fields a transition leaves undefined', async () => {
        const store = await fresh();
        await store.withTransaction((tx) => tx.approvals.insertRequest(aRequest(uuid(1), { statusReason: 'kept' })));
        const moved = await store.withTransaction((tx) => tx.approvals.transition(uuid(1), 'pending', 'cancelled', { decidedAt: T0 + 1 }));
        expect(moved).toMatchObject({ status: 'cancelled', statusReason: 'kept', decidedAt: T0 + 1, executionStatus: 'none' });
      });

      it('claims an approved execution for exactly one instance, then finishes it once', async () => {
        const store = await fresh();
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1), { status: 'approved', executionStatus: 'pending' }));
          await tx.approvals.insertRequest(aRequest(uuid(2)));
        });
        const claims = await Promise.all(['i1', 'i2', 'i3'].map((i) => store.withTransaction((tx) => tx.approvals.claimExecution(uuid(1), i, T0 + 10))));
        const winners = claims.filter((c) => c !== undefined);
        expect(winners).toHaveLength(1);
        expect(winners[0]).toMatchObject({ executionStatus: 'running', executionInstanceId: 'i1', executionStartedAt: T0 + 10 });
        // Not approved: nothing to claim.
        expect(await store.withTransaction((tx) => tx.approvals.claimExecution(uuid(2), 'i1', T0))).toBeUndefined();

        const finished = await store.withTransaction((tx) => tx.approvals.finishExecution(uuid(1), { status: 'succeeded', result: '{"ok":true}', now: T0 + 20 }));
        expect(finished).toMatchObject({ executionStatus: 'succeeded', executionFinishedAt: T0 + 20, result: '{"ok":true}', executionError: null });
        expect(await store.withTransaction((tx) => tx.approvals.finishExecution(uuid(1), { status: 'failed', error: 'again', now: T0 + 30 }))).toBeUndefined();
      });

      it('never lets an instance a peer has fenced claim a run, even before it noticed', async () => {
        const store = await fresh();
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1), { status: 'approved', executionStatus: 'pending' }));
          await tx.instances.registerInstance({ id: 'dead', hostname: 'h', pid: 1, now: T0 });
        });
        expect(await store.withTransaction((tx) => tx.instances.fenceInstance('dead', T0, T0 + 10))).toBeDefined();
        expect(await store.withTransaction((tx) => tx.approvals.claimExecution(uuid(1), 'dead', T0 + 11))).toBeUndefined();
        expect(await store.withTransaction((tx) => tx.approvals.claimExecution(uuid(1), 'alive', T0 + 12))).toMatchObject({ executionInstanceId: 'alive' });
      });

      it('hands out the approved async backlog oldest first to claimers side by side, each request to exactly one', async () => {
        const store = await fresh();
        const other = await another(store);
        await store.withTransaction(async (tx) => {
          for (let i = 1; i <= 12; i++) {
            await tx.approvals.insertRequest(aRequest(uuid(i), { status: 'approved', executionStatus: 'pending', decidedAt: T0 + 100 - i }));
          }
          await tx.approvals.insertRequest(aRequest(uuid(20), { mode: 'wait', status: 'approved', executionStatus: 'pending', decidedAt: T0 }));
          await tx.approvals.insertRequest(aRequest(uuid(21), { status: 'approved', executionStatus: 'running', decidedAt: T0 }));
        });
        expect((await store.withTransaction((tx) => tx.approvals.lockNextApprovedAsync()))?.id).toBe(uuid(12));
        const claimedBy = new Map<string, string>();
        const claimer = async (s: Persistence, name: string) => {
          for (;;) {
            const claimed = await s.withTransaction(async (tx) => {
              const next = await tx.approvals.lockNextApprovedAsync();
              if (!next) return null;
              // A turn of the event loop while holding it: another claimer must skip it, not take it too.
              await new Promise((resolve) => setTimeout(resolve, 1));
              return tx.approvals.claimExecution(next.id, name, T0 + 200);
            });
            if (claimed === null) return;
            expect(claimed, `${name} locked a row it could not claim`).toBeDefined();
            expect(claimedBy.has(claimed!.id)).toBe(false);
            claimedBy.set(claimed!.id, name);
          }
        };
        await Promise.all([claimer(store, 'a'), claimer(store, 'b'), claimer(other, 'c'), claimer(other, 'd')]);
        expect([...claimedBy.keys()].sort()).toEqual(Array.from({ length: 12 }, (_, i) => uuid(i + 1)).sort());
      });

      it('ends an execution that will not finish normally only from the state it names', async () => {
        const store = await fresh();
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1), { status: 'approved', executionStatus: 'pending' }));
          await tx.approvals.insertRequest(aRequest(uuid(2), { status: 'approved', executionStatus: 'running', executionInstanceId: 'gone' }));
        });
        const end = (id: string, from: 'pending' | 'running', to: 'failed' | 'interrupted') =>
          store.withTransaction((tx) => tx.approvals.endExecution(id, { from, to, error: `${from}→${to}`, now: T0 + 1 }));
        expect(await end(uuid(1), 'running', 'failed')).toBeUndefined();
        expect(await end(uuid(1), 'pending', 'failed')).toMatchObject({ executionStatus: 'failed', executionError: 'pending→failed', executionFinishedAt: T0 + 1 });
        expect(await end(uuid(2), 'running', 'interrupted')).toMatchObject({ executionStatus: 'interrupted', executionError: 'running→interrupted' });
        expect(await end(uuid(2), 'running', 'interrupted')).toBeUndefined();
      });

      it('finds requests by id prefix, lists pending ones oldest first, and bounds large arguments in a list', async () => {
        const store = await fresh();
        const big = JSON.stringify({ blob: 'x'.repeat(5000) });
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(0xabc1), { requestedAt: T0 + 2 }));
          await tx.approvals.insertRequest(aRequest(uuid(0xabc2), { requestedAt: T0 + 1, arguments: big }));
          await tx.approvals.insertRequest(aRequest(uuid(0xdef), { status: 'rejected' }));
        });
        expect(await store.approvals.idsWithPrefix('0000abc')).toEqual([uuid(0xabc1), uuid(0xabc2)]);
        expect(await store.approvals.idsWithPrefix('0000abc', 1)).toHaveLength(1);
        expect(await store.approvals.idsWithPrefix('0000abc2')).toEqual([uuid(0xabc2)]);
        expect(await store.approvals.idsWithPrefix('0000abd')).toEqual([]);
        expect((await store.approvals.listPending(10)).map((r) => r.id)).toEqual([uuid(0xabc2), uuid(0xabc1)]);
        expect(await store.approvals.countPending()).toBe(2);
        expect(await store.approvals.countByStatus()).toEqual({ pending: 2, rejected: 1 });
        const bounded = await store.approvals.listPendingBounded(10, 100);
        expect(bounded.map((r) => [r.id, r.arguments, r.argumentsBytes])).toEqual([
          [uuid(0xabc2), null, Buffer.byteLength(big)],
          [uuid(0xabc1), '{"path":"a"}', 12],
        ]);
      });

      it('pages the history newest first, filtered by status, tool, requester and time, with large arguments left behind', async () => {
        const store = await fresh();
        const big = JSON.stringify({ blob: 'x'.repeat(5000) });
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1), { requestedAt: T0 + 1, status: 'approved' }));
          await tx.approvals.insertRequest(aRequest(uuid(2), { requestedAt: T0 + 2, status: 'rejected', tool: 'execute_bash', arguments: big }));
          await tx.approvals.insertRequest(aRequest(uuid(3), { requestedAt: T0 + 3, status: 'expired', requesterId: 'other' }));
          await tx.approvals.insertRequest(aRequest(uuid(4), { requestedAt: T0 + 4, status: 'pending' }));
        });
        const ids = (rows: { id: string }[]) => rows.map((r) => r.id);
        expect(ids(await store.approvals.history({ limit: 10 }, 100))).toEqual([uuid(4), uuid(3), uuid(2), uuid(1)]);
        expect(ids(await store.approvals.history({ limit: 2 }, 100))).toEqual([uuid(4), uuid(3)]);
        expect(ids(await store.approvals.history({ limit: 10, before: T0 + 3 }, 100))).toEqual([uuid(2), uuid(1)]);
        expect(ids(await store.approvals.history({ limit: 10, statuses: ['approved', 'rejected'] }, 100))).toEqual([uuid(2), uuid(1)]);
        expect(ids(await store.approvals.history({ limit: 10, tool: 'execute_bash' }, 100))).toEqual([uuid(2)]);
        expect(ids(await store.approvals.history({ limit: 10, requesterId: 'other' }, 100))).toEqual([uuid(3)]);
        expect(ids(await store.approvals.history({ limit: 10, since: T0 + 2, statuses: ['rejected', 'expired', 'approved'] }, 100))).toEqual([uuid(3), uuid(2)]);
        const [bounded] = await store.approvals.history({ limit: 1, tool: 'execute_bash' }, 100);
        expect([bounded!.arguments, bounded!.argumentsBytes]).toEqual([null, Buffer.byteLength(big)]);
        expect((await store.approvals.history({ limit: 1, requesterId: 'other' }, 100))[0]!.arguments).toBe('{"path":"a"}');
      });

      it('finds pending requests by requester, by token, by deadline; approved async ones awaiting a run; and what a dead instance left', async () => {
        const store = await fresh();
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1), { requesterId: 'u1', tokenId: 1, expiresAt: T0 + 10 }));
          await tx.approvals.insertRequest(aRequest(uuid(2), { requesterId: 'u2', tokenId: 2, expiresAt: T0 + 99 }));
          await tx.approvals.insertRequest(aRequest(uuid(3), { status: 'approved', executionStatus: 'pending' }));
          await tx.approvals.insertRequest(aRequest(uuid(4), { mode: 'wait', instanceId: 'dead' }));
          await tx.approvals.insertRequest(aRequest(uuid(5), { mode: 'wait', instanceId: 'dead', status: 'approved', executionStatus: 'pending' }));
          await tx.approvals.insertRequest(aRequest(uuid(6), { status: 'approved', executionStatus: 'running', executionInstanceId: 'dead' }));
        });
        const ids = (rows: ApprovalRecord[]) => rows.map((r) => r.id).sort();
        expect(ids(await store.approvals.pendingOf({ requesterId: 'u1' }))).toEqual([uuid(1)]);
        expect(ids(await store.approvals.pendingOf({ tokenIds: [1, 2] }))).toEqual([uuid(1), uuid(2)]);
        expect(await store.approvals.pendingOf({ tokenIds: [] })).toEqual([]);
        expect(ids(await store.approvals.pendingDueBy(T0 + 10))).toEqual([uuid(1)]);
        expect(ids(await store.approvals.approvedAsyncAwaitingExecution())).toEqual([uuid(3)]);
        const orphans = await store.approvals.orphansOf('dead');
        expect({ pendingWaits: ids(orphans.pendingWaits), unclaimedWaits: ids(orphans.unclaimedWaits), running: ids(orphans.running) }).toEqual({
          pendingWaits: [uuid(4)],
          unclaimedWaits: [uuid(5)],
          running: [uuid(6)],
        });
      });

      it('deletes old decided requests with their decisions, never pending or running ones', async () => {
        const store = await fresh();
        await seedPeople(store);
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1), { status: 'rejected' }));
          await tx.approvals.insertDecision({ requestId: uuid(1), approverId: 'approver_a', verdict: 'reject', reason: 'no', now: T0 });
          await tx.approvals.insertRequest(aRequest(uuid(2)));
          await tx.approvals.insertRequest(aRequest(uuid(3), { status: 'approved', executionStatus: 'running' }));
          await tx.approvals.insertRequest(aRequest(uuid(4), { status: 'expired', requestedAt: T0 + 100 }));
        });
        expect(await store.withTransaction((tx) => tx.approvals.deleteDecidedBefore(T0 + 50))).toBe(1);
        expect(await store.approvals.request(uuid(1))).toBeUndefined();
        expect(await store.approvals.decisions(uuid(1))).toEqual([]);
        expect(await store.approvals.countByStatus()).toEqual({ pending: 1, approved: 1, expired: 1 });
      });
    });

    describe('decisions', () => {
      it("stores one decision per approver and request: a second one from the same approver is refused (already decided)", async () => {
        const store = await fresh();
        await seedPeople(store);
        await store.withTransaction((tx) => tx.approvals.insertRequest(aRequest(uuid(1), { requiredApprovals: 2 })));
        const first = await store.withTransaction((tx) =>
          tx.approvals.insertDecision({ requestId: uuid(1), approverId: 'approver_a', verdict: 'approve', reason: 'ok', now: T0 + 1 }),
        );
        expect(first).toMatchObject({ requestId: uuid(1), approverId: 'approver_a', verdict: 'approve', reason: 'ok', decidedAt: T0 + 1, withdrawn: false });
        const again = await store.withTransaction((tx) =>
          tx.approvals.insertDecision({ requestId: uuid(1), approverId: 'approver_a', verdict: 'reject', reason: 'changed', now: T0 + 2 }),
        );
        expect(again).toBeUndefined();
        await store.withTransaction((tx) => tx.approvals.insertDecision({ requestId: uuid(1), approverId: 'approver_b', verdict: 'approve', reason: 'ok too', now: T0 + 3 }));
        const decisions = await store.approvals.decisions(uuid(1));
        expect(decisions.map((d) => [d.approverId, d.verdict, d.reason])).toEqual([
          ['approver_a', 'approve', 'ok'],
          ['approver_b', 'approve', 'ok too'],
        ]);
        expect((await store.approvals.decisionsFor([uuid(1), uuid(2)])).map((d) => d.approverId)).toEqual(['approver_a', 'approver_b']);
        expect(await store.approvals.decisionsFor([])).toEqual([]);
      });

      it('counts only approvals whose approver is still active and may still approve, and marks the others withdrawn', async () => {
        const store = await fresh();
        await seedPeople(store);
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1), { requiredApprovals: 3 }));
          for (const approverId of ['approver_a', 'approver_b', 'approver_c']) {
            await tx.approvals.insertDecision({ requestId: uuid(1), approverId, verdict: 'approve', reason: 'ok', now: T0 });
          }
          await tx.approvals.insertDecision({ requestId: uuid(1), approverId: 'dev_user', verdict: 'approve', reason: 'me too', now: T0 });
        });
        expect(await store.withTransaction((tx) => tx.approvals.countApprovals(uuid(1)))).toBe(3);
        const disabled = await store.withTransaction((tx) => tx.identity.setUserActive('approver_a', false, T0 + 1));
        expect(disabled).toMatchObject({ id: 'approver_a', active: false, disabledAt: T0 + 1 });
        expect(await store.withTransaction((tx) => tx.approvals.countApprovals(uuid(1)))).toBe(2);
        expect((await store.approvals.decisions(uuid(1))).map((d) => [d.approverId, d.withdrawn])).toEqual([
          ['approver_a', true],
          ['approver_b', false],
          ['approver_c', false],
          ['dev_user', true],
        ]);
      });

      it('locks a request for a decision and reads it', async () => {
        const store = await fresh();
        await store.withTransaction((tx) => tx.approvals.insertRequest(aRequest(uuid(1))));
        expect(await store.withTransaction((tx) => tx.approvals.lockForDecision(uuid(1)))).toEqual(aRequest(uuid(1)));
        expect(await store.withTransaction((tx) => tx.approvals.lockForDecision(uuid(2)))).toBeUndefined();
      });
    });

    describe('the pending caps', () => {
      it('reserves a slot under both caps and names the cap that is full', async () => {
        const store = await fresh();
        const reserve = (requesterId: string) => store.withTransaction((tx) => tx.approvals.reservePendingSlot({ max: 3, requesterId, maxPerRequester: 2 }));
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertRequest(aRequest(uuid(1), { requesterId: 'u1' }));
          await tx.approvals.insertRequest(aRequest(uuid(2), { requesterId: 'u1', status: 'approved' }));
        });
        expect(await reserve('u1')).toBe('reserved');
        await store.withTransaction((tx) => tx.approvals.insertRequest(aRequest(uuid(3), { requesterId: 'u1' })));
        expect(await reserve('u1')).toBe('requester_cap');
        expect(await reserve('u2')).toBe('reserved');
        await store.withTransaction((tx) => tx.approvals.insertRequest(aRequest(uuid(4), { requesterId: 'u2' })));
        expect(await reserve('u2')).toBe('global_cap');
        expect(await store.withTransaction((tx) => tx.approvals.reservePendingSlot({ max: 4, requesterId: 'u3' }))).toBe('reserved');
      });
    });

    describe('users, tokens, roles and policy', () => {
      it('finds the user behind a live token by its hash, and never behind a revoked one', async () => {
        const store = await fresh();
        const { devToken } = await seedPeople(store);
        expect(await store.identity.principalByTokenHash('hash-dev')).toEqual({ userId: 'dev_user', role: 'developer', active: true, tokenId: devToken, tokenHash: 'hash-dev' });
        expect(await store.identity.principalByTokenHash('hash-nobody')).toBeUndefined();
        expect(await store.identity.requesterStanding('dev_user', devToken)).toEqual({ userActive: true, tokenLive: true });
        const second = await store.withTransaction((tx) => tx.identity.insertToken({ userId: 'dev_user', tokenHash: 'hash-dev-2', prefix: 'tg_de2', now: T0 }));
        expect(await store.withTransaction((tx) => tx.identity.revokeTokens('dev_user', T0 + 1))).toEqual([devToken, second].sort((a, b) => a - b));
        expect(await store.withTransaction((tx) => tx.identity.revokeTokens('dev_user', T0 + 2))).toEqual([]);
        expect(await store.identity.principalByTokenHash('hash-dev')).toBeUndefined();
        expect(await store.identity.requesterStanding('dev_user', devToken)).toEqual({ userActive: true, tokenLive: false });
        expect(await store.identity.requesterStanding('nobody', null)).toEqual({ userActive: null, tokenLive: null });
        expect((await store.identity.tokenIds()).sort()).toEqual([devToken, second].sort());
      });

      it('lists users with their live tokens, disables and enables them, and deletes them all for a reseed', async () => {
        const store = await fresh();
        await seedPeople(store);
        expect(await store.withTransaction((tx) => tx.identity.setUserActive('nobody', false, T0))).toBeUndefined();
        const back = await store.withTransaction(async (tx) => {
          await tx.identity.setUserActive('approver_b', false, T0 + 1);
          return tx.identity.setUserActive('approver_b', true, T0 + 2);
        });
        expect(back).toEqual({ id: 'approver_b', role: 'admin', active: true, createdAt: T0, disabledAt: null });
        expect(await store.identity.user('approver_b')).toEqual(back);
        expect(await store.identity.countUsers()).toBe(4);
        expect(await store.identity.listUsers()).toEqual([
          { id: 'approver_a', role: 'admin', active: true, createdAt: T0, tokens: 0 },
          { id: 'approver_b', role: 'admin', active: true, createdAt: T0, tokens: 0 },
          { id: 'approver_c', role: 'admin', active: true, createdAt: T0, tokens: 0 },
          { id: 'dev_user', role: 'developer', active: true, createdAt: T0, tokens: 1 },
        ]);
        await store.withTransaction((tx) => tx.identity.deleteUsersAndTokens());
        expect(await store.identity.countUsers()).toBe(0);
        expect(await store.identity.tokenIds()).toEqual([]);
      });

      it('keeps console sessions by the hash of their secret: live until revoked or expired, revoked one by one or all of a user at once', async () => {
        const store = await fresh();
        await seedPeople(store);
        const session = (id: string, userId: string, createdAt: number) => ({ id, userId, secretHash: `secret-${id}`, createdAt, expiresAt: createdAt + 1000, address: '127.0.0.1', userAgent: 'test' });
        await store.withTransaction(async (tx) => {
          await tx.identity.insertSession(session('s1', 'approver_a', T0));
          await tx.identity.insertSession(session('s2', 'approver_a', T0 + 10));
          await tx.identity.insertSession(session('s3', 'approver_b', T0 + 20));
        });
        expect(await store.identity.sessionBySecretHash('secret-s1')).toEqual({ sessionId: 's1', userId: 'approver_a', role: 'admin', active: true, secretHash: 'secret-s1', expiresAt: T0 + 1000 });
        expect(await store.identity.sessionBySecretHash('secret-nobody')).toBeUndefined();
        expect((await store.identity.liveSessions(T0 + 30)).map((s) => s.id)).toEqual(['s3', 's2', 's1']);
        expect((await store.identity.liveSessions(T0 + 30, 'approver_a')).map((s) => s.id)).toEqual(['s2', 's1']);
        // s1 has expired at T0 + 1000; the store still finds it by hash, and the caller judges the expiry.
        expect((await store.identity.liveSessions(T0 + 1005)).map((s) => s.id)).toEqual(['s3', 's2']);

        const revoked = await store.withTransaction((tx) => tx.identity.revokeSession('s3', T0 + 40));
        expect(revoked).toEqual({ id: 's3', userId: 'approver_b', createdAt: T0 + 20, expiresAt: T0 + 1020, revokedAt: T0 + 40, address: '127.0.0.1', userAgent: 'test' });
        expect(await store.withTransaction((tx) => tx.identity.revokeSession('s3', T0 + 41))).toBeUndefined();
        expect(await store.identity.sessionBySecretHash('secret-s3')).toBeUndefined();

        expect((await store.withTransaction((tx) => tx.identity.revokeSessionsOf('approver_a', T0 + 50))).sort()).toEqual(['s1', 's2']);
        expect(await store.withTransaction((tx) => tx.identity.revokeSessionsOf('approver_a', T0 + 51))).toEqual([]);
        expect(await store.identity.liveSessions(T0 + 60)).toEqual([]);

        await store.withTransaction((tx) => tx.identity.insertSession(session('s4', 'approver_c', T0 + 100)));
        expect(await store.withTransaction((tx) => tx.identity.deleteSessionsEndedBefore(T0 + 45))).toBe(1);
        expect(await store.withTransaction((tx) => tx.identity.deleteSessionsEndedBefore(T0 + 1050))).toBe(2);
        expect((await store.identity.liveSessions(T0 + 60)).map((s) => s.id)).toEqual(['s4']);
        await store.withTransaction((tx) => tx.identity.deleteUsersAndTokens());
        expect(await store.identity.liveSessions(T0 + 60)).toEqual([]);
      });

      it('keeps roles, grants and tool policies, updating on a second write', async () => {
        const store = await fresh();
        await store.withTransaction(async ({ policy }) => {
          await policy.upsertRole('guest', 'first', T0);
          await policy.upsertRole('guest', 'second', T0);
          await policy.grant('guest', 'tool:echo');
          await policy.grant('guest', 'tool:echo');
          await policy.upsertToolPolicy('echo', 'LOW');
          await policy.upsertToolPolicy('echo', 'MEDIUM', 'changed');
          await policy.upsertToolPolicy('fs.*', 'HIGH');
        });
        expect(await store.policy.roleNames()).toEqual(['guest']);
        expect(await store.policy.rolePermissions()).toEqual([{ role: 'guest', permission: 'tool:echo' }]);
        expect(await store.policy.toolPolicies()).toEqual(
          expect.arrayContaining([
            { tool: 'echo', sensitivity: 'MEDIUM', description: 'changed' },
            { tool: 'fs.*', sensitivity: 'HIGH', description: '' },
          ]),
        );
        await store.withTransaction((tx) => tx.policy.deleteGrantsAndPolicies());
        expect(await store.policy.rolePermissions()).toEqual([]);
        expect(await store.policy.toolPolicies()).toEqual([]);
        expect(await store.policy.roleNames()).toEqual(['guest']);
      });

      it('keeps small facts by key', async () => {
        const store = await fresh();
        expect(await store.meta.getMeta('k')).toBeUndefined();
        await store.withTransaction((tx) => tx.meta.setMeta('k', 'one', T0));
        await store.withTransaction((tx) => tx.meta.setMeta('k', 'two', T0 + 1));
        expect(await store.meta.getMeta('k')).toBe('two');
      });
    });

    describe('instances', () => {
      it('registers instances, beats their hearts, and fences a silent one exactly once', async () => {
        const store = await fresh();
        await store.withTransaction(async (tx) => {
          await tx.instances.registerInstance({ id: 'a', hostname: 'h', pid: 1, now: T0 });
          await tx.instances.registerInstance({ id: 'b', hostname: 'h', pid: 2, now: T0 });
        });
        expect(await store.withTransaction((tx) => tx.instances.heartbeat('b', T0 + 5))).toMatchObject({ id: 'b', heartbeatAt: T0 + 5, stoppedAt: null });
        expect((await store.instances.liveInstancesOtherThan('a')).map((i) => i.id)).toEqual(['b']);
        // A peer that judged the heartbeat of T0 stale loses: b has beaten since.
        expect(await store.withTransaction((tx) => tx.instances.fenceInstance('b', T0, T0 + 10))).toBeUndefined();
        const fenced = await Promise.all([1, 2].map(() => store.withTransaction((tx) => tx.instances.fenceInstance('b', T0 + 5, T0 + 10))));
        expect(fenced.filter((f) => f !== undefined)).toEqual([{ id: 'b', hostname: 'h', pid: 2, startedAt: T0, heartbeatAt: T0 + 5, stoppedAt: T0 + 10 }]);
        expect(await store.withTransaction((tx) => tx.instances.heartbeat('b', T0 + 11))).toBeUndefined();
        expect(await store.instances.liveInstancesOtherThan('a')).toEqual([]);
        await store.withTransaction((tx) => tx.instances.markInstanceStopped('a', T0 + 12));
        expect(await store.instances.liveInstancesOtherThan('z')).toEqual([]);
      });
    });

    describe('rate windows', () => {
      it('counts calls per key and window up to the limit, refusing whatever would pass it, and forgets old windows', async () => {
        const store = await fresh();
        const add = (key: string, start: number, n: number, limit = 5) => store.withTransaction((tx) => tx.limits.addToWindow(key, start, n, limit));
        expect(await add('t:1', T0, 3)).toBe(3);
        expect(await add('t:1', T0, 2)).toBe(5);
        expect(await add('t:1', T0, 1)).toBeUndefined();
        expect(await add('t:2', T0, 6)).toBeUndefined();
        expect(await add('t:2', T0, 1)).toBe(1);
        expect(await add('t:1', T0 + 60_000, 1)).toBe(1);
        expect(await store.withTransaction((tx) => tx.limits.deleteWindowsBefore(T0 + 60_000))).toBe(2);
        expect(await add('t:1', T0, 1)).toBe(1);
      });

      it('never lets callers counting at once from several stores pass the limit: 30 calls against a limit of 7 take exactly 7', async () => {
        const store = await fresh();
        const other = await another(store);
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, i) => (i % 2 ? store : other).withTransaction((tx) => tx.limits.addToWindow('t:1', T0, 1, 7))),
        );
        expect(results.filter((r) => r !== undefined).sort((a, b) => a! - b!)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      });
    });

    describe('the audit log', () => {
      it('gives every event a seq, keeps chains apart, and reads the log back in every order', async () => {
        const store = await fresh();
        // Chain c1 has positions 1..3, c2 has 1..2, and one event of the chain from before per-writer
        // chains; c2's second event is logged earlier than c1's third.
        const events = [
          anEvent(1, 'genesis', { actor: 'odd' }),
          anEvent(1, 'genesis', { chain: 'c2', instanceId: 'i2', at: T0 + 2 }),
          anEvent(2, 'h1', { actor: 'even', requestId: 'r3' }),
          anEvent(2, 'h1', { chain: 'c2', instanceId: 'i2', at: T0 + 3 }),
          anEvent(3, 'h2', { actor: 'odd', at: T0 + 5 }),
          anEvent(7, 'old', { chain: null, chainSeq: null, at: T0 + 4, action: 'legacy' }),
        ];
        const seqs: number[] = [];
        await store.withTransaction(async (tx) => {
          for (const e of events) seqs.push(await tx.audit.insertAudit(e));
        });
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(6);
        const [s1, s2, s3, s4, s5, s6] = seqs as [number, number, number, number, number, number];
        expect(await store.audit.lastAudit()).toEqual({ seq: s6, hash: 'h7' });
        expect(await store.audit.auditChainHeads()).toEqual([
          { chain: 'c2', chainSeq: 2, seq: s4, hash: 'h2' },
          { chain: 'c1', chainSeq: 3, seq: s5, hash: 'h3' },
          { chain: null, chainSeq: null, seq: s6, hash: 'h7' },
        ]);
        expect(await store.audit.lastOfChainBefore('c1', T0 + 5, s5)).toEqual({ chain: 'c1', chainSeq: 2, seq: s3, hash: 'h2' });
        expect(await store.audit.lastOfChainBefore('c1', T0 + 9, s3)).toEqual({ chain: 'c1', chainSeq: 1, seq: s1, hash: 'h1' });
        expect(await store.audit.lastOfChainBefore(null, T0 + 9, s6)).toBeUndefined();
        expect(await store.audit.auditEvent(s3)).toEqual({ seq: s3, ...events[2] });
        // Newest first by time, then seq: c1's third (T0+5), the old chain's (T0+4), c2's second (T0+3) …
        expect((await store.audit.auditPage({ limit: 3 })).map((e) => e.seq)).toEqual([s5, s6, s4]);
        expect((await store.audit.auditPage({ limit: 3, beforeSeq: s4 })).map((e) => e.seq)).toEqual([s3, s2, s1]);
        expect((await store.audit.auditPage({ limit: 10, user: 'odd', beforeSeq: s5 })).map((e) => e.seq)).toEqual([s1]);
        expect((await store.audit.auditPage({ limit: 10, since: T0 + 4, action: 'tool.executed', tool: 'echo' })).map((e) => e.seq)).toEqual([s5]);
        expect((await store.audit.auditPage({ limit: 10, requestId: 'r3' })).map((e) => e.seq)).toEqual([s3]);
        expect(await store.audit.auditEventsAfter(s4)).toEqual([
          { seq: s5, action: 'tool.executed', requestId: null, instanceId: 'i1' },
          { seq: s6, action: 'legacy', requestId: null, instanceId: 'i1' },
        ]);
        const walk = async (range: Parameters<Persistence['audit']['auditInOrder']>[1]) => {
          const walked: number[] = [];
          for await (const e of store.audit.auditInOrder(2, range)) walked.push(e.seq);
          return walked;
        };
        expect(await walk({ after: s1, through: s4 })).toEqual([s2, s3, s4]);
        expect(await walk({})).toEqual(seqs);
        expect(await walk({ chain: 'c1' })).toEqual([s1, s3, s5]);
        expect(await walk({ chain: 'c2', after: s2 })).toEqual([s4]);
        expect(await walk({ chain: null })).toEqual([s6]);
        expect(await store.withTransaction((tx) => tx.audit.deleteChainThrough('c1', s3))).toBe(2);
        expect((await store.audit.auditPage({ limit: 10 })).map((e) => e.seq)).toEqual([s5, s6, s4, s2]);
      });

      it('refuses a second event at the same position of a chain (a fork)', async () => {
        const store = await fresh();
        await store.withTransaction((tx) => tx.audit.insertAudit(anEvent(1, 'genesis')));
        await expect(store.withTransaction((tx) => tx.audit.insertAudit(anEvent(1, 'genesis', { actor: 'forker' })))).rejects.toThrow();
        await store.withTransaction((tx) => tx.audit.insertAudit(anEvent(1, 'genesis', { chain: 'c2' })));
        expect((await store.audit.auditChainHeads()).map((h) => h.chain)).toEqual(['c1', 'c2']);
      });

      it('tells a writer how each transaction ended, before withTransaction settles', async () => {
        const store = await fresh();
        const outcomes: string[] = [];
        await store.withTransaction(async (tx) => tx.onSettled((o) => outcomes.push(o)));
        await store
          .withTransaction(async (tx) => {
            tx.onSettled((o) => outcomes.push(o));
            throw new Error('no');
          })
          .catch(() => undefined);
        expect(outcomes).toEqual(['committed', 'rolled-back']);
      });

      it('keeps one signed checkpoint per seq: a second one for the same seq is refused', async () => {
        const store = await fresh();
        const checkpoint = (seq: number, instanceId: string) => ({ seq, hash: `h${seq}`, heads: `[{"seq":${seq}}]`, at: T0, instanceId, keyId: 'k', signature: 's' });
        expect(await store.withTransaction((tx) => tx.audit.insertAuditCheckpoint(checkpoint(3, 'a')))).toEqual(checkpoint(3, 'a'));
        expect(await store.withTransaction((tx) => tx.audit.insertAuditCheckpoint(checkpoint(3, 'b')))).toBeUndefined();
        await store.withTransaction((tx) => tx.audit.insertAuditCheckpoint({ ...checkpoint(7, 'a'), heads: null }));
        expect((await store.audit.auditCheckpoints()).map((c) => [c.seq, c.heads])).toEqual([
          [3, '[{"seq":3}]'],
          [7, null],
        ]);
        expect((await store.audit.auditCheckpointsNewestFirst(1)).map((c) => c.seq)).toEqual([7]);
        expect(await store.withTransaction((tx) => tx.audit.deleteAuditCheckpointsBefore(7))).toBe(1);
        expect((await store.audit.auditCheckpoints()).map((c) => c.instanceId)).toEqual(['a']);
      });
    });

    /**
     * The three serialisation points, each hammered from several transactions on one store, a second
     * store on the same database and, where the factory can, another process: every one of them
     * yields to the event loop between its read and its write.
     */
    describe('serialisation points under concurrency', () => {
      const everywhere = async (store: Persistence, scenario: ScenarioName, calls: unknown[][], run: (s: Persistence, ...args: never[]) => Promise<unknown>) => {
        const other = await another(store);
        const elsewhere = await factory.elsewhere?.(store);
        const third = Math.ceil(calls.length / 3);
        const here = calls.slice(0, third);
        const there = elsewhere ? calls.slice(third, 2 * third) : calls.slice(third);
        const away = elsewhere ? calls.slice(2 * third) : [];
        const settled = await Promise.allSettled([
          ...(elsewhere ? [elsewhere.run(scenario, away)] : []),
          ...here.map((args) => run(store, ...(args as never[]))),
          ...there.map((args) => run(other, ...(args as never[]))),
        ]);
        const failures = settled.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason));
        expect(failures).toEqual([]);
        return settled.flatMap((s) => {
          const value = (s as PromiseFulfilledResult<unknown>).value;
          return Array.isArray(value) ? value : [value];
        });
      };

      it('never lets the pending caps overshoot: 30 concurrent creations under a cap of 5 leave exactly 5 pending', async () => {
        const store = await fresh();
        const calls = Array.from({ length: 30 }, (_, i) => [uuid(i + 1), `requester_${i % 2}`, 5]);
        const outcomes = await everywhere(store, 'createWithinCaps', calls, createWithinCaps as never);
        expect(outcomes.filter((o) => o === 'reserved')).toHaveLength(5);
        expect(outcomes.filter((o) => o === 'global_cap')).toHaveLength(25);
        expect(await store.approvals.countPending()).toBe(5);
      });

      it('never lets one requester overshoot their own cap: 30 concurrent creations under a cap of 3 each leave exactly 3', async () => {
        const store = await fresh();
        const calls = Array.from({ length: 30 }, (_, i) => [uuid(i + 1), 'one_requester', 1000, 3]);
        const outcomes = await everywhere(store, 'createWithinCaps', calls, createWithinCaps as never);
        expect(outcomes.filter((o) => o === 'reserved')).toHaveLength(3);
        expect(await store.approvals.countPending()).toBe(3);
      });

      it('decides a quorum-2 request approved by two approvers at once, every time: never pending with two approvals', async () => {
        const store = await fresh();
        await seedPeople(store);
        const rounds = 12;
        await store.withTransaction(async (tx) => {
          for (let r = 0; r < rounds; r++) await tx.approvals.insertRequest(aRequest(uuid(r + 1), { requiredApprovals: 2 }));
        });
        // Every round's two votes come from two different stores (or processes).
        const calls = ['approver_a', 'approver_b'].flatMap((approver) => Array.from({ length: rounds }, (_, r) => [uuid(r + 1), approver]));
        const outcomes = await everywhere(store, 'approve', calls, approve as never);
        expect(outcomes.filter((o) => o === 'approved')).toHaveLength(rounds);
        expect(outcomes.filter((o) => o === 'counted')).toHaveLength(rounds);
        for (let r = 0; r < rounds; r++) {
          const request = await store.approvals.request(uuid(r + 1));
          const decisions = await store.approvals.decisions(uuid(r + 1));
          expect({ round: r, status: request?.status, decisions: decisions.length }).toEqual({ round: r, status: 'approved', decisions: 2 });
        }
      });

      it('never lets a standing approval of 5 calls allow a 6th: 30 concurrent uses from every store leave exactly 5', async () => {
        const store = await fresh();
        await store.withTransaction((tx) => tx.approvals.insertGrant(aGrant(uuid(1), { expiresAt: Date.now() + 3_600_000 })));
        const outcomes = await everywhere(store, 'useGrant', Array.from({ length: 30 }, () => [uuid(1)]), useGrant as never);
        expect(outcomes.filter((o) => o === 'used')).toHaveLength(5);
        expect(await store.approvals.grantById(uuid(1))).toMatchObject({ usesLeft: 0, uses: 5 });
      });

      it('lets writers append at once, each to its own chains, with no lock between them: every event lands and every chain verifies', async () => {
        const store = await fresh();
        const calls = Array.from({ length: 60 }, (_, i) => [`writer_${i % 3}`]);
        const seqs = (await everywhere(store, 'appendEvent', calls, appendEvent as never)) as number[];
        expect(new Set(seqs).size).toBe(60);
        const verified = await verifyAuditChain(store);
        expect(verified).toMatchObject({ ok: true, checked: 60 });
        expect(verified.chains).toBeGreaterThanOrEqual(3);
        const writersOf = new Set((await store.audit.auditChainHeads()).map((h) => h.chain!.split('@')[0]));
        expect(writersOf).toEqual(new Set(['writer_0', 'writer_1', 'writer_2']));
      });
    });

    describe('standing approvals', () => {
      it('finds live grants by tool and requester, uses their calls by conditional update, and revokes them once', async () => {
        const store = await fresh();
        await store.withTransaction(async (tx) => {
          await tx.approvals.insertGrant(aGrant(uuid(1), { usesLeft: 1, maxUses: 1 }));
          await tx.approvals.insertGrant(aGrant(uuid(2), { expiresAt: T0 + 10 }));
          await tx.approvals.insertGrant(aGrant(uuid(3), { requesterId: 'other', approvers: '["admin_user","approver_b"]' }));
        });
        expect((await store.approvals.liveGrantsFor('write_file', 'dev_user', T0 + 5)).map((g) => g.id).sort()).toEqual([uuid(1), uuid(2)]);
        expect((await store.approvals.liveGrantsFor('write_file', 'dev_user', T0 + 10)).map((g) => g.id)).toEqual([uuid(1)]);
        expect(await store.withTransaction((tx) => tx.approvals.consumeGrant(uuid(1), T0 + 1))).toMatchObject({ usesLeft: 0, uses: 1 });
        expect(await store.withTransaction((tx) => tx.approvals.consumeGrant(uuid(1), T0 + 1))).toBeUndefined();
        expect(await store.withTransaction((tx) => tx.approvals.consumeGrant(uuid(2), T0 + 10))).toBeUndefined();
        expect(await store.approvals.liveGrantsFor('write_file', 'dev_user', T0 + 5)).toHaveLength(1);
        expect((await store.approvals.listGrants({ limit: 10 })).length).toBe(3);
        expect((await store.approvals.listGrants({ limit: 10, liveAt: T0 + 5 })).map((g) => g.id).sort()).toEqual([uuid(2), uuid(3)]);
        expect(await store.withTransaction((tx) => tx.approvals.revokeGrant(uuid(2), 'admin_user', 'done', T0 + 2))).toMatchObject({ revokedAt: T0 + 2, revokedBy: 'admin_user' });
        expect(await store.withTransaction((tx) => tx.approvals.revokeGrant(uuid(2), 'admin_user', 'again', T0 + 3))).toBeUndefined();
        // A user takes the grants they asked for or approved with them.
        const revoked = await store.withTransaction((tx) => tx.approvals.revokeGrantsOf('approver_b', 'cli', 'disabled', T0 + 4));
        expect(revoked.map((g) => g.id)).toEqual([uuid(3)]);
        expect((await store.approvals.grantById(uuid(3)))?.revokeReason).toBe('disabled');
      });
    });

    describe('another store on the same database', () => {
      it('sees what the first one committed', async () => {
        const store = await fresh();
        const other = await another(store);
        await store.withTransaction((tx) => tx.approvals.insertRequest(aRequest(uuid(1))));
        expect((await other.approvals.request(uuid(1)))?.id).toBe(uuid(1));
        await other.withTransaction((tx) => tx.approvals.transition(uuid(1), 'pending', 'cancelled', { decidedAt: T0 }));
        expect((await store.approvals.request(uuid(1)))?.status).toBe('cancelled');
      });
    });
  });
}
