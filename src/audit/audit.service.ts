import { createHash } from 'node:crypto';
import type { AuditReads, AuditRecord, ChainHead } from './audit-store.js';
import type { MetaReads, Persistence, Transaction } from '../core/persistence.js';
import { redact } from './redact.js';

export { redact } from './redact.js';

export const GENESIS_HASH = '0'.repeat(64);
const ANCHOR_KEY = 'audit_anchor';

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

/** The hash of one event, chained to the one before it. */
export function chainHash(prevHash: string, e: Omit<AuditRecord, 'hash' | 'prevHash'>): string {
  const canonical = JSON.stringify([
    e.seq,
    e.at,
    e.actor,
    e.action,
    e.tool,
    e.requestId,
    e.status,
    e.durationMs,
    e.details,
    e.httpRequestId,
    e.instanceId,
  ]);
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex');
}

export interface AuditLog {
  /** Appends one event in `tx`, so the event and its state change commit together. */
  append(tx: Transaction, entry: AuditEntry): Promise<AuditRecord>;
}

export function createAuditLog(deps: { clock: { now(): number }; instanceId: string; onAppend?: (seq: number) => void }): AuditLog {
  const { clock, instanceId } = deps;
  return {
    async append(tx, entry) {
      const last = (await tx.audit.lockChainHead()) ?? (await anchorOf(tx.meta));
      const row = {
        seq: last.seq + 1,
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
      };
      const record = { ...row, prevHash: last.hash, hash: chainHash(last.hash, row) };
      await tx.audit.insertAudit(record);
      deps.onAppend?.(row.seq);
      return record;
    },
  };
}

/** Where the chain starts: genesis, or the last event retention pruned. */
export async function anchorOf(meta: MetaReads): Promise<ChainHead> {
  const raw = await meta.getMeta(ANCHOR_KEY);
  return raw ? (JSON.parse(raw) as { seq: number; hash: string }) : { seq: 0, hash: GENESIS_HASH };
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  anchor: { seq: number; hash: string };
  brokenAt?: { seq: number; reason: string };
}

/** Recomputes the chain from its anchor (genesis, or the last pruned event) and reports the first broken link. */
export async function verifyAuditChain(store: Persistence): Promise<VerifyResult> {
  return verifyChainStretch(store.audit, await anchorOf(store.meta));
}

/** Recomputes the chain from `from` (an event's seq and hash, or the anchor) through `throughSeq`. */
export async function verifyChainStretch(audit: AuditReads, from: ChainHead, throughSeq = Number.POSITIVE_INFINITY): Promise<VerifyResult> {
  const anchor = { seq: from.seq, hash: from.hash };
  let prev = anchor;
  let checked = 0;
  for await (const row of audit.auditInOrder(5000, { after: from.seq, through: throughSeq })) {
    if (row.seq !== prev.seq + 1) return { ok: false, checked, anchor, brokenAt: { seq: row.seq, reason: `expected sequence ${prev.seq + 1}, found ${row.seq} (an event was removed)` } };
    if (row.prevHash !== prev.hash) return { ok: false, checked, anchor, brokenAt: { seq: row.seq, reason: 'prev_hash does not match the previous event' } };
    const { hash, prevHash: _prev, ...rest } = row;
    if (chainHash(row.prevHash, rest) !== hash) return { ok: false, checked, anchor, brokenAt: { seq: row.seq, reason: 'hash does not match the event (it was altered)' } };
    prev = { seq: row.seq, hash };
    checked++;
  }
  if (Number.isFinite(throughSeq) && prev.seq !== throughSeq) {
    return { ok: false, checked, anchor, brokenAt: { seq: prev.seq + 1, reason: `the chain ends at ${prev.seq}, before event ${throughSeq}` } };
  }
  return { ok: true, checked, anchor };
}

/**
 * Deletes events older than `cutoff` and keeps the hash of the last deleted one as the anchor,
 * so the remaining chain still verifies. Once the log has signed checkpoints, it never prunes past
 * the newest one: verification then holds the anchor to a signature, and a "pruning" beyond the
 * newest checkpoint is a sign of tampering. Runs in one transaction.
 */
export function pruneAudit(store: Persistence, cutoff: number, now: number): Promise<number> {
  return store.withTransaction(async ({ audit, meta }) => {
    const last = await audit.lastAuditBefore(cutoff);
    if (!last) return 0;
    // Never prune the newest event: appends chain from it.
    const newest = await audit.lockChainHead();
    if (!newest || newest.seq === last.seq) return 0;
    const checkpoint = (await audit.auditCheckpointsNewestFirst(1))[0];
    const through = checkpoint && checkpoint.seq < last.seq ? await audit.auditEvent(checkpoint.seq) : last;
    if (!through || through.seq <= (await anchorOf(meta)).seq) return 0;
    const deleted = await audit.deleteAuditThrough(through.seq);
    await meta.setMeta(ANCHOR_KEY, JSON.stringify({ seq: through.seq, hash: through.hash }), now);
    await audit.deleteAuditCheckpointsBefore(through.seq);
    return deleted;
  });
}

export interface AuditEventView {
  seq: number;
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
