import type { ApprovalReads, ApprovalStore, InstanceReads, InstanceStore } from '../approvals/approval-store.js';
import type { AuditReads, AuditStore } from '../audit/audit-store.js';
import type { IdentityReads, IdentityStore } from '../auth/identity-store.js';
import type { LimitStore } from '../limits/limit-store.js';
import type { NotifyReads, NotifyStore } from '../notify/notify-store.js';
import type { PolicyReads, PolicyStore } from '../policy/policy-store.js';

/** Small key/value facts: the audit chain's anchor after pruning, the seed marker. */
export interface MetaReads {
  getMeta(key: string): Promise<string | undefined>;
}

export interface MetaStore extends MetaReads {
  setMeta(key: string, value: string, now: number): Promise<void>;
}

/** How a transaction ended: `unknown` when the connection broke while it committed. */
export type TransactionOutcome = 'committed' | 'rolled-back' | 'unknown';

/** The stores of one transaction: every write goes through one. */
export interface Transaction {
  readonly approvals: ApprovalStore;
  readonly instances: InstanceStore;
  readonly identity: IdentityStore;
  readonly policy: PolicyStore;
  readonly audit: AuditStore;
  readonly meta: MetaStore;
  readonly limits: LimitStore;
  /**
   * Runs `fn` once this transaction has ended, before `withTransaction` settles: how a writer that
   * keeps state in memory (the audit chain heads) learns whether what it wrote is in the database.
   */
  onSettled(fn: (outcome: TransactionOutcome) => void): void;
  /** The notification outbox, escalation markers and Slack links. */
  readonly notify: NotifyStore;
}

/**
 * The persistence port: every read and write of toolgate's state, with no SQL and no driver type
 * in it. The SQLite store (src/db/) implements it today; a PostgreSQL store implements the same.
 *
 * Writes happen only inside `withTransaction`: the callback's stores see its own writes; it
 * commits when the callback resolves and rolls back when it throws, and its promise settles only
 * once that is durable (a store may carry several transactions in one commit). Do not nest transactions
 * (pass `tx` down instead) and do not await anything but the store inside one: other writers
 * wait meanwhile. Reads outside a transaction see committed state only.
 */
export interface Persistence {
  readonly approvals: ApprovalReads;
  readonly instances: InstanceReads;
  readonly identity: IdentityReads;
  readonly policy: PolicyReads;
  readonly audit: AuditReads;
  readonly meta: MetaReads;
  readonly notify: NotifyReads;
  withTransaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Resolves when the database answers; throws when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
