/**
 * One event of the audit log. Each writer appends to hash chains of its own (`chain`), each event
 * chained to the one before it in its chain by `prevHash`; `seq` orders the whole log.
 */
export interface AuditRecord {
  /** Assigned by the store when the event is inserted: unique and increasing across every chain. */
  seq: number;
  at: number;
  actor: string;
  action: string;
  tool: string | null;
  requestId: string | null;
  status: string | null;
  durationMs: number | null;
  /** JSON text, hashed as stored. */
  details: string;
  httpRequestId: string | null;
  /** The process that wrote the event. */
  instanceId: string;
  /** The writer's chain; null for the single chain written before per-writer chains (its position is `seq`). */
  chain: string | null;
  /** The position in `chain`, from 1; null with `chain`. */
  chainSeq: number | null;
  prevHash: string;
  hash: string;
}

/** An event as a writer hands it to the store, which assigns its `seq`. */
export type NewAuditRecord = Omit<AuditRecord, 'seq'>;

/**
 * Signed chain heads. `heads` is the JSON list of every chain's newest event when it was signed;
 * `seq` is the largest of their seqs and `hash` the SHA-256 of `heads`. A checkpoint from before
 * per-writer chains has no `heads` and signs event `seq`'s hash.
 */
export interface AuditCheckpointRecord {
  seq: number;
  hash: string;
  heads: string | null;
  at: number;
  instanceId: string;
  keyId: string;
  signature: string;
}

/** An event's place in the whole log. */
export interface LogPosition {
  seq: number;
  hash: string;
}

/** An event's place in its chain: the newest event of a chain is the chain's head. */
export interface ChainHead {
  chain: string | null;
  chainSeq: number | null;
  seq: number;
  hash: string;
}

export interface AuditFilter {
  limit: number;
  user?: string | undefined;
  tool?: string | undefined;
  action?: string | undefined;
  /** The events of one approval request. */
  requestId?: string | undefined;
  since?: number | undefined;
  /** The `seq` of the oldest event of the previous page: the page holds the events logged before it. */
  beforeSeq?: number | undefined;
}

export interface AuditRange {
  /** Events with a larger seq only. */
  after?: number;
  /** Events with a seq up to this one only. */
  through?: number;
  /** One chain's events only (null: the chain from before per-writer chains). */
  chain?: string | null;
}

export interface AuditReads {
  /** The event with the largest seq. */
  lastAudit(): Promise<LogPosition | undefined>;
  /** The newest event of every chain. */
  auditChainHeads(): Promise<ChainHead[]>;
  /** The newest event of `chain` logged before `at` whose seq is below `belowSeq`. */
  lastOfChainBefore(chain: string | null, at: number, belowSeq: number): Promise<ChainHead | undefined>;
  auditEvent(seq: number): Promise<AuditRecord | undefined>;
  /** Newest first: by time, then by seq. */
  auditPage(filter: AuditFilter): Promise<AuditRecord[]>;
  /** Events after `seq`, by seq, for the change feed. */
  auditEventsAfter(seq: number, limit?: number): Promise<Pick<AuditRecord, 'seq' | 'action' | 'requestId' | 'instanceId'>[]>;
  /** The log (or one chain of it) in seq order within `range`, a page at a time. */
  auditInOrder(pageSize?: number, range?: AuditRange): AsyncIterable<AuditRecord>;
  /** Oldest first. */
  auditCheckpoints(): Promise<AuditCheckpointRecord[]>;
  auditCheckpointsNewestFirst(limit: number): Promise<AuditCheckpointRecord[]>;
}

/** The audit log inside a transaction. */
export interface AuditStore extends AuditReads {
  /**
   * Inserts one event and returns the seq the store gave it. Takes no lock shared with other
   * writers: the writer alone appends to its chain (a unique position per chain refuses a fork).
   */
  insertAudit(record: NewAuditRecord): Promise<number>;
  /**
   * Serialises retention between instances until the transaction ends (it rewrites the anchors).
   * SQLite: BEGIN IMMEDIATE already does. PostgreSQL: a transaction-scoped advisory lock.
   */
  lockAuditMaintenance(): Promise<void>;
  /** Deletes the events of `chain` up to and including `seq`; returns how many. */
  deleteChainThrough(chain: string | null, seq: number): Promise<number>;
  /** Undefined when a checkpoint with that seq already exists (another instance signed it first). */
  insertAuditCheckpoint(record: AuditCheckpointRecord): Promise<AuditCheckpointRecord | undefined>;
  deleteAuditCheckpointsBefore(seq: number): Promise<number>;
}
