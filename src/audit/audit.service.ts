import { createHash, randomBytes } from 'node:crypto';
import type { AuditCheckpointRecord, AuditReads, AuditRecord, ChainHead, NewAuditRecord } from './audit-store.js';
import type { MetaReads, Persistence, Transaction } from '../core/persistence.js';
import { redact } from './redact.js';

export { redact } from './redact.js';

export const GENESIS_HASH = '0'.repeat(64);
/** The prune anchors of every chain (JSON list of ChainHead). */
const ANCHORS_KEY = 'audit_anchors';
/** The anchor of the single chain from before per-writer chains, as it was kept then. */
const LEGACY_ANCHOR_KEY = 'audit_anchor';

export interface AuditEntry {
  actor: string;
  action: string;
  tool?: string | null;
  requestId?: string | null;
  status?: string | null;
  durationMs?: number | null;
  details?: Record<string, unknown>;
  httpRequestId?: string | null;
}

/** How a chain is named in reports and maps: the chain from before per-writer chains is ''. */
export const chainKey = (chain: string | null): string => chain ?? '';
/** An event's position in its chain: the chain from before per-writer chains counts by `seq`. */
export const positionOf = (e: { chain: string | null; chainSeq: number | null; seq: number }): number => (e.chain === null ? e.seq : e.chainSeq ?? 0);
const describeChain = (chain: string | null) => (chain === null ? 'the chain from before per-writer chains' : `chain ${chain}`);

type Hashed = Omit<NewAuditRecord, 'hash' | 'prevHash'> & { seq?: number };

/**
 * The hash of one event, chained to the one before it in its chain. It covers the chain and the
 * position, so an event cannot be moved to another chain or place; `seq` (assigned by the store)
 * is not in it. Events of the chain from before per-writer chains keep their form, which covered `seq`.
 */
export function chainHash(prevHash: string, e: Hashed): string {
  const fields = [e.at, e.actor, e.action, e.tool, e.requestId, e.status, e.durationMs, e.details, e.httpRequestId, e.instanceId];
  let canonical: string;
  if (e.chain === null) {
    if (e.seq === undefined) throw new Error('an event of the chain from before per-writer chains is hashed with its seq');
    canonical = JSON.stringify([e.seq, ...fields]);
  } else canonical = JSON.stringify(['chain/2', e.chain, e.chainSeq, ...fields]);
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex');
}

export interface AuditLog {
  /** Appends one event in `tx`, so the event and its state change commit together. */
  append(tx: Transaction, entry: AuditEntry): Promise<AuditRecord>;
}

/** One of a writer's chains: its head as committed. */
interface Chain {
  name: string;
  chainSeq: number;
  hash: string;
}

/**
 * The audit log of one writer (a gateway process, a CLI run). It appends to chains of its own,
 * named `<instance>/<random>`, whose heads it keeps in memory, so an append reads nothing and
 * locks nothing that another writer needs. A transaction takes a chain for its events and hands
 * it back when it ends: committed, the chain's head moves on; rolled back, it stays. Transactions
 * open at once each get a chain, so there are as many chains as this writer ever had transactions
 * writing at once (one on SQLite, whose transactions run one at a time). A transaction whose end
 * is unknown (the connection broke during COMMIT) ends its chain: the next one starts afresh.
 */
export interface AuditLogDeps {
  clock: { now(): number };
  instanceId: string;
  /** Called for every event appended (inside its transaction). */
  onAppend?: (seq: number) => void;
  /** Called right after a transaction that appended events committed, with their seqs' range (a hint to others: it must not throw). */
  onCommitted?: (seqs: { from: number; through: number }) => void;
}

export function createAuditLog(deps: AuditLogDeps): AuditLog {
  const { clock, instanceId } = deps;
  const idle: Chain[] = [];
  const writing = new Map<Transaction, { chain: Chain; chainSeq: number; hash: string; tail: Promise<unknown>; from: number; through: number }>();

  const take = (tx: Transaction) => {
    let open = writing.get(tx);
    if (open) return open;
    const chain = idle.pop() ?? { name: `${instanceId}/${randomBytes(6).toString('hex')}`, chainSeq: 0, hash: GENESIS_HASH };
    const taken = { chain, chainSeq: chain.chainSeq, hash: chain.hash, tail: Promise.resolve() as Promise<unknown>, from: Number.POSITIVE_INFINITY, through: 0 };
    writing.set(tx, (open = taken));
    tx.onSettled((outcome) => {
      writing.delete(tx);
      if (outcome === 'unknown') return;
      if (outcome === 'committed') Object.assign(chain, { chainSeq: taken.chainSeq, hash: taken.hash });
      idle.push(chain);
      if (outcome !== 'committed' || taken.through === 0) return;
      try {
        deps.onCommitted?.({ from: taken.from, through: taken.through });
      } catch {
        // Only a hint to others (their polling finds the events anyway): it must not fail a commit.
      }
    });
    return open;
  };

  return {
    append(tx, entry) {
      const open = take(tx);
      // Appends within one transaction go one after another, each after the one before it landed.
      const appended = open.tail.then(async () => {
        const row = {
          at: clock.now(),
          actor: entry.actor,
          action: entry.action,
          tool: entry.tool ?? null,
          requestId: entry.requestId ?? null,
          status: entry.status ?? null,
          durationMs: entry.durationMs ?? null,
          details: JSON.stringify(redact(entry.details ?? {})),
          httpRequestId: entry.httpRequestId ?? null,
          instanceId,
          chain: open.chain.name,
          chainSeq: open.chainSeq + 1,
        };
        const record = { ...row, prevHash: open.hash, hash: chainHash(open.hash, row) };
        const seq = await tx.audit.insertAudit(record);
        open.chainSeq = row.chainSeq;
        open.hash = record.hash;
        open.from = Math.min(open.from, seq);
        open.through = Math.max(open.through, seq);
        deps.onAppend?.(seq);
        return { seq, ...record };
      });
      open.tail = appended.catch(() => undefined);
      return appended;
    },
  };
}

/** Where each chain starts: the last event retention pruned from it (a chain without one starts at genesis). */
export async function anchorsOf(meta: MetaReads): Promise<Map<string, ChainHead>> {
  const anchors = new Map<string, ChainHead>();
  const raw = await meta.getMeta(ANCHORS_KEY);
  if (raw) {
    for (const anchor of JSON.parse(raw) as ChainHead[]) anchors.set(chainKey(anchor.chain), anchor);
    return anchors;
  }
  // Until retention first runs with per-writer chains, the old single anchor holds (it then moves into the list).
  const legacy = await meta.getMeta(LEGACY_ANCHOR_KEY);
  if (legacy) {
    const { seq, hash } = JSON.parse(legacy) as { seq: number; hash: string };
    anchors.set('', { chain: null, chainSeq: null, seq, hash });
  }
  return anchors;
}

/** A chain's start before its first event. */
const genesisOf = (chain: string | null): ChainHead => ({ chain, chainSeq: chain === null ? null : 0, seq: 0, hash: GENESIS_HASH });

export interface VerifyResult {
  ok: boolean;
  checked: number;
  /** Chains that have events. */
  chains: number;
  /** The largest seq retention pruned through, in any chain (0: nothing pruned). */
  prunedThrough: number;
  brokenAt?: { seq: number; chain: string | null; reason: string };
}

/** Checks one event against the one before it in its chain; the reason when they do not link. */
function linkProblem(prev: ChainHead, row: AuditRecord): string | undefined {
  const expected = positionOf(prev) + 1;
  if (positionOf(row) !== expected) return `expected event ${expected} of ${describeChain(row.chain)}, found ${positionOf(row)} (an event was removed)`;
  if (row.prevHash !== prev.hash) return `prev_hash does not match the event before it in ${describeChain(row.chain)}`;
  const { hash, prevHash: _prev, ...rest } = row;
  if (chainHash(row.prevHash, rest) !== hash) return 'hash does not match the event (it was altered)';
  return undefined;
}

const headOf = (row: AuditRecord): ChainHead => ({ chain: row.chain, chainSeq: row.chainSeq, seq: row.seq, hash: row.hash });

/**
 * Recomputes every chain from its anchor (genesis, or the last event retention pruned from it) in
 * one walk of the log, and reports the first broken link in any of them.
 */
export async function verifyAuditChain(store: Persistence): Promise<VerifyResult> {
  const anchors = await anchorsOf(store.meta);
  const prunedThrough = Math.max(0, ...[...anchors.values()].map((a) => a.seq));
  const heads = new Map<string, ChainHead>();
  let checked = 0;
  for await (const row of store.audit.auditInOrder(5000)) {
    const key = chainKey(row.chain);
    const prev = heads.get(key) ?? anchors.get(key) ?? genesisOf(row.chain);
    const problem = linkProblem(prev, row);
    if (problem) return { ok: false, checked, chains: heads.size, prunedThrough, brokenAt: { seq: row.seq, chain: row.chain, reason: problem } };
    heads.set(key, headOf(row));
    checked++;
  }
  return { ok: true, checked, chains: heads.size, prunedThrough };
}

/** Recomputes one chain from `from` (an event of it, its anchor or its genesis) through `through`, its event at a later seq. */
export async function verifyChainStretch(audit: AuditReads, from: ChainHead, through: ChainHead): Promise<VerifyResult> {
  let prev = from;
  let checked = 0;
  const broken = (seq: number, reason: string): VerifyResult => ({ ok: false, checked, chains: 1, prunedThrough: 0, brokenAt: { seq, chain: from.chain, reason } });
  for await (const row of audit.auditInOrder(5000, { after: from.seq, through: through.seq, chain: from.chain })) {
    const problem = linkProblem(prev, row);
    if (problem) return broken(row.seq, problem);
    prev = headOf(row);
    checked++;
  }
  if (prev.seq !== through.seq) return broken(prev.seq, `${describeChain(from.chain)} ends at event ${prev.seq}, before event ${through.seq}`);
  return { ok: true, checked, chains: 1, prunedThrough: 0 };
}

/** The heads a checkpoint signed (one head, of the chain from before per-writer chains, for a checkpoint from then). */
export function headsOf(checkpoint: AuditCheckpointRecord): ChainHead[] {
  if (checkpoint.heads === null) return [{ chain: null, chainSeq: null, seq: checkpoint.seq, hash: checkpoint.hash }];
  try {
    const heads = JSON.parse(checkpoint.heads) as unknown;
    return Array.isArray(heads) ? (heads as ChainHead[]) : [];
  } catch {
    return [];
  }
}

/** The instance that writes `chain` (`<instance>/<random>`). */
const writerOf = (chain: string) => chain.slice(0, Math.max(0, chain.lastIndexOf('/')));

/**
 * Deletes, chain by chain, the events older than `cutoff`, and keeps the last deleted event of
 * each chain as its anchor, so what remains still verifies and its writer can go on appending.
 * It never deletes the log's newest event (seq must never go back), and once the log has signed
 * checkpoints it never prunes a chain past its head in the newest one, nor a chain the newest one
 * does not cover: verification holds the anchors to the signatures, so a "pruning" beyond them is
 * a sign of tampering. The anchor of a chain left without events goes too once no gateway writes
 * it any more and the newest checkpoint no longer lists it, so the anchors and the checkpoints'
 * lists of heads do not grow with every process that ever wrote. Runs in one transaction, one
 * instance at a time.
 */
export function pruneAudit(store: Persistence, cutoff: number, now: number): Promise<number> {
  return store.withTransaction(async ({ audit, meta, instances }) => {
    await audit.lockAuditMaintenance();
    const newestEvent = await audit.lastAudit();
    if (!newestEvent) return 0;
    const anchors = await anchorsOf(meta);
    const before = JSON.stringify([...anchors.values()]);
    const newestCheckpoint = (await audit.auditCheckpointsNewestFirst(1))[0];
    const signed = newestCheckpoint ? new Map(headsOf(newestCheckpoint).map((h) => [chainKey(h.chain), h])) : undefined;
    const heads = await audit.auditChainHeads();
    let deleted = 0;
    for (const head of heads) {
      const key = chainKey(head.chain);
      let through = await audit.lastOfChainBefore(head.chain, cutoff, newestEvent.seq);
      if (!through) continue;
      if (signed) {
        const limit = signed.get(key);
        if (!limit) continue;
        if (limit.seq < through.seq) through = limit;
      }
      const anchor = anchors.get(key);
      if (anchor && through.seq <= anchor.seq) continue;
      deleted += await audit.deleteChainThrough(head.chain, through.seq);
      anchors.set(key, { chain: through.chain, chainSeq: through.chainSeq, seq: through.seq, hash: through.hash });
    }
    const withEvents = new Set(heads.map((h) => chainKey(h.chain)));
    const live = new Set((await instances.liveInstancesOtherThan('')).map((i) => i.id));
    for (const [key, anchor] of anchors) {
      const ended = anchor.chain === null || !live.has(writerOf(anchor.chain));
      if (ended && !withEvents.has(key) && !signed?.has(key)) anchors.delete(key);
    }
    if (JSON.stringify([...anchors.values()]) === before) return deleted;
    await meta.setMeta(ANCHORS_KEY, JSON.stringify([...anchors.values()]), now);
    // Checkpoints whose every head is behind its chain's anchor, or of a chain gone, vouch only for history.
    const exists = (chain: string | null) => withEvents.has(chainKey(chain)) || anchors.has(chainKey(chain));
    const current = (c: AuditCheckpointRecord) => headsOf(c).some((h) => exists(h.chain) && h.seq >= (anchors.get(chainKey(h.chain))?.seq ?? 0));
    const firstCurrent = (await audit.auditCheckpoints()).find(current);
    if (firstCurrent) await audit.deleteAuditCheckpointsBefore(firstCurrent.seq);
    return deleted;
  });
}

export interface AuditEventView {
  seq: number;
  /** The writer's chain ('' for the chain from before per-writer chains) and the position in it. */
  chain: string;
  chainSeq: number;
  at: string;
  actor: string;
  action: string;
  tool: string | null;
  requestId: string | null;
  status: string | null;
  durationMs: number | null;
  details: unknown;
  httpRequestId: string | null;
  prevHash: string;
  hash: string;
}

export function toAuditView(row: AuditRecord): AuditEventView {
  return {
    seq: row.seq,
    chain: chainKey(row.chain),
    chainSeq: positionOf(row),
    at: new Date(row.at).toISOString(),
    actor: row.actor,
    action: row.action,
    tool: row.tool,
    requestId: row.requestId,
    status: row.status,
    durationMs: row.durationMs,
    details: JSON.parse(row.details),
    httpRequestId: row.httpRequestId,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}
