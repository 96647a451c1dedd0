import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { chainHash, createAuditLog, GENESIS_HASH, pruneAudit, verifyAuditChain, type AuditLog } from '../../src/audit/audit.service.js';
import { Checkpointer, verifyCheckpoints } from '../../src/audit/checkpoints.js';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { KeyRing } from '../../src/signing/key-ring.js';
import { silentLogger } from '../../src/logger.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('toolgate-chains-');
afterAll(() => dir.remove());
let files = 0;
const opened: SqliteStore[] = [];
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});

const DAY = 86_400_000;
const T0 = 1_700_000_000_000;

function fresh() {
  const store = SqliteStore.open(join(dir.path, `chains-${++files}.db`));
  opened.push(store);
  return store;
}

/** Changes the database as someone with write access to the file would: plain SQL. */
function tamper(store: SqliteStore, statement: string, ...params: unknown[]) {
  const db = new Database(store.path);
  try {
    db.prepare(statement).run(...params);
  } finally {
    db.close();
  }
}

const writer = (instanceId: string, clock = { now: () => T0 }) => createAuditLog({ clock, instanceId });
const append = (store: SqliteStore, log: AuditLog, action = 'test.event') => store.withTransaction((tx) => log.append(tx, { actor: 'someone', action }));

async function rows(store: SqliteStore) {
  const all = [];
  for await (const e of store.audit.auditInOrder()) all.push(e);
  return all;
}

describe('audit chains, one per writer', () => {
  it('gives each writer a chain of its own, linked from genesis, and verifies them all in one walk', async () => {
    const store = fresh();
    const [a, b] = [writer('gateway-a'), writer('gateway-b')];
    for (let i = 0; i < 4; i++) {
      await append(store, a);
      await append(store, b);
    }
    const events = await rows(store);
    const chainOf = (instance: string) => events.filter((e) => e.instanceId === instance);
    for (const instance of ['gateway-a', 'gateway-b']) {
      const chain = chainOf(instance);
      expect(new Set(chain.map((e) => e.chain)).size).toBe(1);
      expect(chain[0]!.chain).toMatch(new RegExp(`^${instance}/[0-9a-f]+$`));
      expect(chain.map((e) => e.chainSeq)).toEqual([1, 2, 3, 4]);
      expect(chain[0]!.prevHash).toBe(GENESIS_HASH);
      expect(chain.slice(1).map((e) => e.prevHash)).toEqual(chain.slice(0, -1).map((e) => e.hash));
    }
    expect(await verifyAuditChain(store)).toEqual({ ok: true, checked: 8, chains: 2, prunedThrough: 0 });
  });

  it('leaves a chain where it was when the transaction that appended to it rolls back', async () => {
    const store = fresh();
    const log = writer('gateway-a');
    await append(store, log);
    await expect(
      store.withTransaction(async (tx) => {
        await log.append(tx, { actor: 'someone', action: 'lost' });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await append(store, log);
    expect((await rows(store)).map((e) => [e.action, e.chainSeq])).toEqual([
      ['test.event', 1],
      ['test.event', 2],
    ]);
    expect((await verifyAuditChain(store)).ok).toBe(true);
  });

  it('detects an altered event in any chain, and an event deleted from the middle of a chain', async () => {
    const store = fresh();
    const [a, b] = [writer('gateway-a'), writer('gateway-b')];
    for (let i = 0; i < 3; i++) {
      await append(store, a);
      await append(store, b);
    }
    const events = await rows(store);
    const middleOfB = events.filter((e) => e.instanceId === 'gateway-b')[1]!;
    tamper(store, "update audit_events set actor = 'someone_else' where seq = ?", middleOfB.seq);
    expect(await verifyAuditChain(store)).toMatchObject({ ok: false, brokenAt: { seq: middleOfB.seq, chain: middleOfB.chain, reason: 'hash does not match the event (it was altered)' } });

    const other = fresh();
    const [c, d] = [writer('gateway-a'), writer('gateway-b')];
    for (let i = 0; i < 3; i++) {
      await append(other, c);
      await append(other, d);
    }
    const [first, second, third] = (await rows(other)).filter((e) => e.instanceId === 'gateway-a');
    tamper(other, 'delete from audit_events where seq = ?', second!.seq);
    const broken = await verifyAuditChain(other);
    expect(broken).toMatchObject({ ok: false, brokenAt: { seq: third!.seq, chain: first!.chain } });
    expect(broken.brokenAt!.reason).toContain('expected event 2');
    expect(broken.brokenAt!.reason).toContain('an event was removed');
  });

  it('verifies the chain written before per-writer chains beside the new ones, in its own form', async () => {
    const store = fresh();
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 3; seq++) {
      const row = { at: T0 + seq, actor: 'old', action: 'legacy', tool: null, requestId: null, status: null, durationMs: null, details: '{}', httpRequestId: null, instanceId: 'old', chain: null, chainSeq: null };
      const hash = chainHash(prev, { ...row, seq });
      expect(await store.withTransaction((tx) => tx.audit.insertAudit({ ...row, prevHash: prev, hash }))).toBe(seq);
      prev = hash;
    }
    await append(store, writer('gateway-a'));
    expect(await verifyAuditChain(store)).toMatchObject({ ok: true, checked: 4, chains: 2 });
    tamper(store, "update audit_events set actor = 'new' where seq = 2");
    expect(await verifyAuditChain(store)).toMatchObject({ ok: false, brokenAt: { seq: 2, chain: null } });
  });
});

describe('signed checkpoints over every chain head', () => {
  async function signedTwoChains() {
    const store = fresh();
    const key = KeyRing.openOrCreate(join(dir.path, `key-${files}.pem`));
    const filePath = join(dir.path, `checkpoints-${files}.jsonl`);
    const checkpointer = await Checkpointer.open({ store, key, clock: { now: () => T0 }, instanceId: 'gateway-a', every: 1000, logger: silentLogger, filePath });
    const [a, b] = [writer('gateway-a'), writer('gateway-b')];
    for (let i = 0; i < 3; i++) {
      await append(store, a);
      await append(store, b);
    }
    const checkpoint = (await checkpointer.checkpoint({ force: true }))!;
    const verify = () => verifyCheckpoints(store, { key, keyPath: 'key', filePath });
    return { store, checkpoint, verify, a, b };
  }

  it('signs the head of every chain, and verifies while the log is whole', async () => {
    const { store, checkpoint, verify } = await signedTwoChains();
    const heads = JSON.parse(checkpoint.heads!) as { chain: string; chainSeq: number; seq: number }[];
    expect(heads.map((h) => [h.chain.split('/')[0], h.chainSeq])).toEqual([
      ['gateway-a', 3],
      ['gateway-b', 3],
    ]);
    expect(checkpoint.seq).toBe((await store.audit.lastAudit())!.seq);
    expect(await verify()).toMatchObject({ ok: true, uncovered: 0, checkpoints: 1, problems: [] });
  });

  it('detects the newest event of one chain deleted, and a whole chain deleted, that the hash chains alone cannot see', async () => {
    const { store, checkpoint, verify } = await signedTwoChains();
    const [headA, headB] = JSON.parse(checkpoint.heads!) as { chain: string; seq: number }[];
    tamper(store, 'delete from audit_events where seq = ?', headA!.seq);
    expect((await verifyAuditChain(store)).ok).toBe(true);
    const report = await verify();
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toContain(`event ${headA!.seq}, covered by a signed checkpoint, is missing`);

    tamper(store, 'delete from audit_events where chain = ?', headB!.chain);
    expect((await verifyAuditChain(store)).ok).toBe(true);
    expect((await verify()).problems.join('\n')).toContain(`every event of chain ${headB!.chain} was deleted`);
  });

  it('counts the events written after the checkpoint in any chain as not covered yet', async () => {
    const { store, verify, a, b } = await signedTwoChains();
    await append(store, a);
    await append(store, b);
    await append(store, writer('cli-run'));
    expect(await verify()).toMatchObject({ ok: true, uncovered: 3 });
  });
});

describe('retention across chains', () => {
  it('prunes each chain behind an anchor of its own, keeps verifying, and lets writers append after', async () => {
    const store = fresh();
    let now = T0;
    const clock = { now: () => now };
    const key = KeyRing.openOrCreate(join(dir.path, `key-${files}.pem`));
    const filePath = join(dir.path, `checkpoints-${files}.jsonl`);
    const checkpointer = await Checkpointer.open({ store, key, clock, instanceId: 'gateway-a', every: 1000, logger: silentLogger, filePath });
    const [a, b] = [writer('gateway-a', clock), writer('gateway-b', clock)];
    for (let i = 0; i < 3; i++) {
      await append(store, a);
      await append(store, b);
    }
    const signed = (await checkpointer.checkpoint({ force: true }))!;
    now += 10 * DAY;
    await append(store, a);
    await append(store, b);
    // Everything older than a day goes: three events of each chain, up to the signed heads.
    expect(await pruneAudit(store, now - DAY, now)).toBe(6);
    const verified = await verifyAuditChain(store);
    expect(verified).toMatchObject({ ok: true, checked: 2, chains: 2, prunedThrough: signed.seq });
    expect((await rows(store)).map((e) => e.chainSeq)).toEqual([4, 4]);
    await append(store, a);
    expect((await verifyAuditChain(store)).ok).toBe(true);
    expect(await verifyCheckpoints(store, { key, keyPath: 'key', filePath })).toMatchObject({ ok: true, uncovered: 3 });
  });

  it('never prunes a chain past its head in the newest checkpoint, nor a chain no checkpoint covers', async () => {
    const store = fresh();
    let now = T0;
    const clock = { now: () => now };
    const key = KeyRing.openOrCreate(join(dir.path, `key-${files}.pem`));
    const checkpointer = await Checkpointer.open({ store, key, clock, instanceId: 'gateway-a', every: 1000, logger: silentLogger, filePath: join(dir.path, `cp-${files}.jsonl`) });
    const [a, b] = [writer('gateway-a', clock), writer('gateway-b', clock)];
    await append(store, a);
    await checkpointer.checkpoint({ force: true });
    await append(store, a);
    await append(store, b);
    now += 10 * DAY;
    await append(store, a);
    // Only gateway-a's first event is signed; its second and all of gateway-b's are not.
    expect(await pruneAudit(store, now - DAY, now)).toBe(1);
    expect((await rows(store)).map((e) => [e.instanceId, e.chainSeq])).toEqual([
      ['gateway-a', 2],
      ['gateway-b', 1],
      ['gateway-a', 3],
    ]);
    expect((await verifyAuditChain(store)).ok).toBe(true);
  });
});
