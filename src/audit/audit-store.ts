/** One event of the audit log, chained to the one before it by `prevHash`. */
export interface AuditRecord {
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
  prevHash: string;
  hash: string;
}

/** A signature over the chain's head at event `seq`. */
export interface AuditCheckpointRecord {
  seq: number;
  hash: string;
  at: number;
  instanceId: string;
  keyId: string;
  signature: string;
}

/** The newest event's place in the chain. */
export interface ChainHead {
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
  beforeSeq?: number | undefined;
}

export interface AuditReads {
  /** The newest event, without locking: for readers, never for appending. */
  lastAudit(): Promise<ChainHead | undefined>;
  lastAuditBefore(at: number): Promise<ChainHead | undefined>;
  auditEvent(seq: number): Promise<AuditRecord | undefined>;
  /** Newest first. */
  auditPage(filter: AuditFilter): Promise<AuditRecord[]>;
  /** Events after `seq`, oldest first, for the change feed. */
  auditEventsAfter(seq: number, limit?: number): Promise<Pick<AuditRecord, 'seq' | 'action' | 'requestId' | 'instanceId'>[]>;
  /** The log in sequence order after `range.after` through `range.through`, a page at a time. */
  auditInOrder(pageSize?: number, range?: { after?: number; through?: number }): AsyncIterable<AuditRecord>;
  /** Oldest first. */
  auditCheckpoints(): Promise<AuditCheckpointRecord[]>;
  auditCheckpointsNewestFirst(limit: number): Promise<AuditCheckpointRecord[]>;
}

/** The audit log inside a transaction. */
export interface AuditStore extends AuditReads {
  /**
   * Serialisation point 3: locks the chain head until the transaction ends and returns it
   * (undefined when the log is empty), so the event inserted next in this transaction chains
   * from it and no two appends get the same seq. SQLite: BEGIN IMMEDIATE. PostgreSQL: a
   * transaction-scoped advisory lock on the chain before reading its head.
   */
  lockChainHead(): Promise<ChainHead | undefined>;
  insertAudit(record: AuditRecord): Promise<void>;
  /** Deletes events up to and including `seq`; returns how many. */
  deleteAuditThrough(seq: number): Promise<number>;
  /** Undefined when a checkpoint of that event already exists (another instance signed it first). */
  insertAuditCheckpoint(record: AuditCheckpointRecord): Promise<AuditCheckpointRecord | undefined>;
  deleteAuditCheckpointsBefore(seq: number): Promise<number>;
}
