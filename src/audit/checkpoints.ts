import { createHash, sign, verify } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Persistence } from '../core/persistence.js';
import type { AuditCheckpointRecord, AuditReads, ChainHead } from './audit-store.js';
import type { Logger } from '../logger.js';
import { anchorsOf, chainKey, headsOf, positionOf, verifyChainStretch } from './audit.service.js';
import type { KeyRing, SigningKey } from '../signing/key-ring.js';

/**
 * Signed checkpoints of the audit log's chain heads. The hash chains alone show an altered event,
 * but not a rewrite that recomputes every hash after it, nor the newest events deleted. A
 * checkpoint signs the head of every chain (each writer's), the time and the instance with the
 * gateway's current Ed25519 key (src/signing/key-ring.ts, the key that signs receipts too), kept
 * outside the database, every AUDIT_CHECKPOINT_EVERY events and at shutdown, and is written both
 * to the database and to an append-only file beside the key. Verification then needs the event at
 * each signed head to exist with the signed hash, which no one without the key can arrange after
 * the fact.
 */

export type Checkpoint = AuditCheckpointRecord;

/** The keys a checkpoint's signature is checked against: any key of the ring, retired ones too. */
export type CheckpointKeys = Pick<KeyRing, 'find' | 'path'>;

function signedBytes(c: Omit<Checkpoint, 'signature'>): Buffer {
  // A checkpoint from before per-writer chains signed one head: the event at `seq`.
  if (c.heads === null) return Buffer.from(JSON.stringify(['toolgate-audit-checkpoint/1', c.seq, c.hash, c.at, c.instanceId, c.keyId]));
  return Buffer.from(JSON.stringify(['toolgate-audit-checkpoint/2', c.seq, c.hash, c.heads, c.at, c.instanceId, c.keyId]));
}

/** Signs the heads of every chain; the checkpoint's `seq` is the newest of them. */
export function signCheckpoint(key: SigningKey, heads: readonly ChainHead[], at: number, instanceId: string): Checkpoint {
  if (!key.privateKey) throw new Error('signing needs the private key');
  if (heads.length === 0) throw new Error('a checkpoint signs at least one chain head');
  const sorted = [...heads].sort((a, b) => a.seq - b.seq).map((h) => ({ chain: h.chain, chainSeq: h.chainSeq, seq: h.seq, hash: h.hash }));
  const text = JSON.stringify(sorted);
  const fields = { seq: sorted.at(-1)!.seq, hash: createHash('sha256').update(text).digest('hex'), heads: text, at, instanceId, keyId: key.keyId };
  return { ...fields, signature: sign(null, signedBytes(fields), key.privateKey).toString('base64') };
}

/** Checked with the ring's key named by the checkpoint: checkpoints signed before a rotation keep verifying. */
export function checkpointSignatureValid(keys: CheckpointKeys, c: Checkpoint): boolean {
  const key = keys.find(c.keyId);
  if (!key) return false;
  if (c.heads !== null && createHash('sha256').update(c.heads).digest('hex') !== c.hash) return false;
  try {
    return verify(null, signedBytes(c), key.publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

/** The newest checkpoint in the database whose signature holds, among the newest few. */
async function latestValid(audit: AuditReads, key: CheckpointKeys): Promise<Checkpoint | undefined> {
  return (await audit.auditCheckpointsNewestFirst(20)).find((c) => checkpointSignatureValid(key, c));
}

export interface CheckpointerDeps {
  store: Persistence;
  /** The ring whose current key signs. */
  key: KeyRing;
  clock: { now(): number };
  instanceId: string;
  every: number;
  logger: Logger;
  /** The append-only copy of the checkpoints (AUDIT_CHECKPOINT_FILE). */
  filePath: string;
}

/**
 * Signs a checkpoint once `every` events have been written since the last one. The audit append
 * only compares two numbers; signing runs on the next turn of the event loop, after the event's
 * transaction committed, and before signing it re-checks the chain since the last checkpoint so a
 * checkpoint never vouches for a chain that is already broken.
 */
export class Checkpointer {
  private scheduled = false;
  private stopped = false;

  private constructor(
    private readonly deps: CheckpointerDeps,
    private lastSeq: number,
  ) {}

  static async open(deps: CheckpointerDeps): Promise<Checkpointer> {
    mkdirSync(dirname(deps.filePath), { recursive: true, mode: 0o700 });
    const lastSeq = (await deps.store.audit.auditCheckpointsNewestFirst(1))[0]?.seq ?? 0;
    const checkpointer = new Checkpointer(deps, lastSeq);
    await checkpointer.catchUpFile();
    return checkpointer;
  }

  /**
   * A process killed between storing a checkpoint and appending it to the file leaves the file one
   * line short; the next start appends the genuine (validly signed) checkpoints it lacks.
   */
  private async catchUpFile() {
    const { store, key, logger, filePath } = this.deps;
    try {
      const inFile = readCheckpointFile(filePath).checkpoints;
      const last = inFile.at(-1)?.seq ?? Number.NEGATIVE_INFINITY;
      const missing = (await store.audit.auditCheckpoints()).filter((c) => c.seq > last && checkpointSignatureValid(key, c));
      if (missing.length === 0) return;
      appendFileSync(filePath, missing.map((c) => `${JSON.stringify(c)}\n`).join(''), { mode: 0o600 });
      logger.warn({ file: filePath, checkpoints: missing.length }, 'appended audit checkpoints missing from the checkpoint file');
    } catch (err) {
      logger.error({ err: (err as Error).message, file: filePath }, 'could not bring the audit checkpoint file up to date');
    }
  }

  /** Called for every appended event (inside its transaction): cheap. */
  readonly noteAppend = (seq: number) => {
    if (this.scheduled || this.stopped || seq - this.lastSeq < this.deps.every) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) void this.checkpoint();
    });
  };

  /** No more checkpoints: the database is about to close. */
  stop() {
    this.stopped = true;
  }

  /**
   * Signs the heads of every chain unless the newest checkpoint already covers them all (or,
   * without `force`, covers all but fewer than `every` events). Returns the new checkpoint, if one
   * was written.
   */
  async checkpoint(options: { force?: boolean } = {}): Promise<Checkpoint | undefined> {
    const { store, key, logger } = this.deps;
    try {
      const heads = await store.audit.auditChainHeads();
      if (heads.length === 0) return undefined;
      const newest = Math.max(...heads.map((h) => h.seq));
      const previous = await latestValid(store.audit, key);
      const from = previous?.seq ?? 0;
      this.lastSeq = Math.max(this.lastSeq, from);
      const signed = new Map((previous ? headsOf(previous) : []).map((h) => [chainKey(h.chain), h]));
      const moved = heads.filter((h) => signed.get(chainKey(h.chain))?.seq !== h.seq);
      if (moved.length === 0 || (!options.force && newest - from < this.deps.every)) return undefined;
      const anchors = await anchorsOf(store.meta);
      for (const head of moved) {
        const start = signed.get(chainKey(head.chain)) ?? anchors.get(chainKey(head.chain)) ?? { chain: head.chain, chainSeq: head.chain === null ? null : 0, seq: 0, hash: '0'.repeat(64) };
        const stretch = await verifyChainStretch(store.audit, start, head);
        if (!stretch.ok) {
          logger.error({ brokenAt: stretch.brokenAt, chain: head.chain, since: start.seq }, 'audit chain broken since the last checkpoint: not signing a new one (run toolgate audit verify)');
          return undefined;
        }
      }
      const checkpoint = signCheckpoint(key.current(), heads, this.deps.clock.now(), this.deps.instanceId);
      if (!(await store.withTransaction((tx) => tx.audit.insertAuditCheckpoint(checkpoint)))) return undefined;
      this.lastSeq = checkpoint.seq;
      try {
        appendFileSync(this.deps.filePath, `${JSON.stringify(checkpoint)}\n`, { mode: 0o600 });
      } catch (err) {
        logger.error({ err: (err as Error).message, file: this.deps.filePath, seq: checkpoint.seq }, 'could not append the audit checkpoint to its file');
      }
      return checkpoint;
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'could not sign an audit checkpoint');
      return undefined;
    }
  }
}

export interface CheckpointFile {
  exists: boolean;
  checkpoints: Checkpoint[];
  /** 1-based line numbers that are not checkpoints. */
  badLines: number[];
}

export function readCheckpointFile(path: string): CheckpointFile {
  if (!existsSync(path)) return { exists: false, checkpoints: [], badLines: [] };
  const checkpoints: Checkpoint[] = [];
  const badLines: number[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        const c = JSON.parse(line) as Checkpoint;
        if (typeof c.seq === 'number' && typeof c.hash === 'string' && typeof c.signature === 'string') checkpoints.push({ ...c, heads: typeof c.heads === 'string' ? c.heads : null });
        else badLines.push(i + 1);
      } catch {
        badLines.push(i + 1);
      }
    });
  return { exists: true, checkpoints, badLines };
}

export interface CheckpointReport {
  ok: boolean;
  /** The newest valid checkpoint the chain was checked against. */
  latest?: Checkpoint;
  /** Events after the latest checkpoint: not covered by a signature yet. */
  uncovered: number;
  checkpoints: number;
  problems: string[];
  notes: string[];
}

const same = (a: Checkpoint, b: Checkpoint) => a.seq === b.seq && a.hash === b.hash && a.signature === b.signature;
const named = (chain: string | null) => (chain === null ? 'the chain from before per-writer chains' : `chain ${chain}`);

/**
 * Checks the audit log against its signed checkpoints: every checkpoint (database and file) is
 * signed by the key; the two copies agree; the event at each signed chain head exists with the
 * signed hash; and pruning never went past the newest checkpoint in any chain. Heads at or behind
 * their chain's prune anchor are history and are not checked against events.
 */
export async function verifyCheckpoints(store: Persistence, options: { key: CheckpointKeys | undefined; keyPath: string; filePath: string }): Promise<CheckpointReport> {
  const { key, filePath } = options;
  const problems: string[] = [];
  const notes: string[] = [];
  const anchors = await anchorsOf(store.meta);
  const anchorSeq = (chain: string | null) => anchors.get(chainKey(chain))?.seq ?? 0;
  const end = (await store.audit.lastAudit())?.seq ?? Math.max(0, ...[...anchors.values()].map((a) => a.seq));
  const heads = await store.audit.auditChainHeads();
  const inDb = await store.audit.auditCheckpoints();
  const file = readCheckpointFile(filePath);
  const exists = (chain: string | null) => heads.some((h) => h.chain === chain) || anchors.has(chainKey(chain));
  // A head behind its chain's anchor, or of a chain retention retired, is history.
  const current = (c: Checkpoint) => headsOf(c).some((h) => exists(h.chain) && h.seq >= anchorSeq(h.chain));
  /** Events of `chain` after position `after`: what no checkpoint covers yet. */
  const uncoveredAfter = (covered: Map<string, ChainHead>) =>
    heads.reduce((n, h) => {
      const from = Math.max(positionOf(covered.get(chainKey(h.chain)) ?? { chain: h.chain, chainSeq: 0, seq: 0 }), positionOf(anchors.get(chainKey(h.chain)) ?? { chain: h.chain, chainSeq: 0, seq: 0 }));
      return n + Math.max(0, positionOf(h) - from);
    }, 0);

  if (!key) {
    if (inDb.length > 0 || file.checkpoints.length > 0) {
      problems.push(`there are signed checkpoints but no key at ${options.keyPath} to check them with (set SIGNING_KEY_FILE)`);
    } else notes.push(`no signing key at ${options.keyPath} and no checkpoints: deleting the newest events or rewriting the chain would not be detected`);
    return { ok: problems.length === 0, uncovered: uncoveredAfter(new Map()), checkpoints: 0, problems, notes };
  }

  if (file.badLines.length > 0) problems.push(`${filePath}: line ${file.badLines.slice(0, 5).join(', ')} is not a checkpoint (the file was edited)`);
  if (!file.exists) notes.push(`no checkpoint file at ${filePath}: checkpoint rows deleted from the database cannot be noticed`);
  for (const c of file.checkpoints.filter(current)) {
    if (inDb.some((d) => same(d, c))) continue;
    problems.push(
      c.seq > end
        ? `the log ends at event ${end}, but ${filePath} has a checkpoint signed at event ${c.seq} that the database lacks: the newest events and their checkpoints were deleted (or this is an older copy, such as a backup)`
        : `checkpoint at event ${c.seq} (signed ${new Date(c.at).toISOString()}) is in ${filePath} but not in the database: checkpoint rows were deleted`,
    );
  }
  // The file covers the checkpoints from its first line on (an archived file starts a new one).
  const fileStart = file.checkpoints[0]?.seq ?? Number.POSITIVE_INFINITY;
  for (const c of inDb.filter((d) => current(d) && d.seq >= fileStart)) {
    if (!file.checkpoints.some((f) => same(f, c))) problems.push(`checkpoint at event ${c.seq} is in the database but not in ${filePath}: the file was edited, or the row was added without the gateway`);
  }

  const all = [...inDb, ...file.checkpoints.filter((f) => !inDb.some((d) => same(d, f)))];
  const valid: Checkpoint[] = [];
  for (const c of all) {
    if (checkpointSignatureValid(key, c)) valid.push(c);
    else if (current(c)) problems.push(`checkpoint at event ${c.seq} has no valid signature by key ${c.keyId} of ${key.path} (forged, or signed with a key not in the ring)`);
  }
  valid.sort((a, b) => a.seq - b.seq);
  const latest = valid.at(-1);
  const latestHeads = new Map((latest ? headsOf(latest) : []).map((h) => [chainKey(h.chain), h]));

  if (latest) {
    for (const anchor of anchors.values()) {
      // The newest checkpoint that lists the chain (a chain pruned to its last event drops out of later ones).
      const signed = [...valid].reverse().find((c) => headsOf(c).some((h) => h.chain === anchor.chain));
      const signedHead = signed && headsOf(signed).find((h) => h.chain === anchor.chain)!;
      if (!signedHead || anchor.seq > signedHead.seq) {
        problems.push(
          `events up to ${anchor.seq} of ${named(anchor.chain)} were removed as if pruned, past the newest checkpoint (event ${signedHead?.seq ?? latest.seq}); pruning never goes past a checkpoint`,
        );
      }
    }
  }
  const checked = new Set<string>();
  for (const c of valid.filter(current)) {
    for (const head of headsOf(c)) {
      const at = `${head.seq}:${head.hash}`;
      if (checked.has(at)) continue;
      checked.add(at);
      if (!exists(head.chain)) {
        if (latestHeads.has(chainKey(head.chain))) problems.push(`event ${head.seq}, covered by a signed checkpoint, is missing: every event of ${named(head.chain)} was deleted`);
        continue;
      }
      if (head.seq < anchorSeq(head.chain)) continue;
      const anchor = anchors.get(chainKey(head.chain));
      if (anchor && head.seq === anchor.seq) {
        if (head.hash !== anchor.hash) problems.push(`the prune anchor of ${named(head.chain)} (event ${anchor.seq}) does not match its signed checkpoint: the chain was rewritten`);
        continue;
      }
      const event = await store.audit.auditEvent(head.seq);
      const chainEnd = heads.find((h) => h.chain === head.chain);
      if (!event || event.chain !== head.chain) {
        problems.push(
          `event ${head.seq}, covered by a signed checkpoint, is missing: the newest events of ${named(head.chain)} were deleted (${chainEnd ? `it ends at event ${chainEnd.seq}` : 'none is left'})`,
        );
      } else if (event.hash !== head.hash) problems.push(`event ${head.seq} does not match its signed checkpoint: ${named(head.chain)} was rewritten at or before it`);
    }
  }
  if (!latest) notes.push('no checkpoint yet: deleting the newest events or rewriting the chain would not be detected');
  return { ok: problems.length === 0, ...(latest ? { latest } : {}), uncovered: uncoveredAfter(latestHeads), checkpoints: valid.length, problems, notes };
}
