import type { ApprovalRecord, ApprovalStatus, DecisionRecord, ExecutionStatus, Verdict } from './approval.js';
import type { ApprovalGrant } from './grants.js';

export type { ApprovalRecord, DecisionRecord } from './approval.js';
export type { ApprovalGrant } from './grants.js';

/** A pending request in a list: `arguments` is null when their JSON is over the list's byte bound. */
export type PendingSummaryRecord = Omit<ApprovalRecord, 'arguments'> & { arguments: string | null; argumentsBytes: number };

/** What a transition may write besides the status; a field left undefined keeps its value. */
export interface TransitionFields {
  decidedAt?: number;
  statusReason?: string;
  executionStatus?: ExecutionStatus;
}

/** The caps a new pending request must fit under. */
export interface PendingCaps {
  /** Pending requests at once, across every requester. */
  max: number;
  requesterId: string;
  /** Pending requests one requester may hold. */
  maxPerRequester?: number | undefined;
}

/** Which requests a history page holds; newest first. */
export interface HistoryFilter {
  limit: number;
  statuses?: readonly ApprovalStatus[] | undefined;
  tool?: string | undefined;
  requesterId?: string | undefined;
  /** Requested at or after (ms). */
  since?: number | undefined;
  /** Requested before (ms): the next page starts before the oldest `requestedAt` of the last one. */
  before?: number | undefined;
}

/** Reads of requests and decisions; outside a transaction each sees committed state. */
export interface ApprovalReads {
  request(id: string): Promise<ApprovalRecord | undefined>;
  /** A request's decisions in the order they were made. */
  decisions(requestId: string): Promise<DecisionRecord[]>;
  decisionsFor(requestIds: readonly string[]): Promise<DecisionRecord[]>;
  /** Ids starting with `prefix` (lower-case hex and dashes), at most `limit`. */
  idsWithPrefix(prefix: string, limit?: number): Promise<string[]>;
  /** Pending requests, oldest first. */
  listPending(limit: number): Promise<ApprovalRecord[]>;
  /** Pending requests, oldest first, leaving arguments over `maxArgumentBytes` in the database. */
  listPendingBounded(limit: number, maxArgumentBytes: number): Promise<PendingSummaryRecord[]>;
  /** Requests of any status matching `filter`, newest first, leaving arguments over `maxArgumentBytes` in the database. */
  history(filter: HistoryFilter, maxArgumentBytes: number): Promise<PendingSummaryRecord[]>;
  countPending(): Promise<number>;
  countByStatus(): Promise<Record<string, number>>;
  /** Pending requests made by a user, or with any of the given tokens. */
  pendingOf(filter: { requesterId: string } | { tokenIds: readonly number[] }): Promise<ApprovalRecord[]>;
  pendingDueBy(now: number, limit?: number): Promise<ApprovalRecord[]>;
  approvedAsyncAwaitingExecution(limit?: number): Promise<ApprovalRecord[]>;
  /** Rows a dead instance left behind: its pending `wait` requests and its running or unclaimed executions. */
  orphansOf(instanceId: string): Promise<{ pendingWaits: ApprovalRecord[]; unclaimedWaits: ApprovalRecord[]; running: ApprovalRecord[] }>;
  grantById(id: string): Promise<ApprovalGrant | undefined>;
  /** Grants of a tool for a requester that are live at `now`: not revoked, not expired, calls left. */
  liveGrantsFor(tool: string, requesterId: string, now: number): Promise<ApprovalGrant[]>;
  /** Grants, newest first; `liveAt`: only those live then. */
  listGrants(filter: { liveAt?: number | undefined; limit: number }): Promise<ApprovalGrant[]>;
}

/**
 * Requests and decisions inside a transaction. Every state change is a compare-and-set: it
 * returns the changed record, or undefined when the row was no longer in the expected state.
 */
export interface ApprovalStore extends ApprovalReads {
  /**
   * Serialisation point 1: checks the caps and holds them until the transaction ends, so the
   * request inserted next in this transaction cannot overshoot them. SQLite: BEGIN IMMEDIATE
   * already serialises writers. PostgreSQL: take a transaction-scoped advisory lock (one key
   * for the caps) before counting; counting alone under READ COMMITTED overshoots.
   */
  reservePendingSlot(caps: PendingCaps): Promise<'reserved' | 'global_cap' | 'requester_cap'>;
  insertRequest(record: ApprovalRecord): Promise<void>;
  /**
   * Serialisation point 2: reads a request and locks it for a decision until the transaction
   * ends, so two approvers of a quorum request count one after the other (never each count one
   * and leave it pending). SQLite: BEGIN IMMEDIATE. PostgreSQL: `SELECT … FOR UPDATE`.
   */
  lockForDecision(id: string): Promise<ApprovalRecord | undefined>;
  /**
   * The oldest approved `async` request whose run nobody has claimed, locked until the
   * transaction ends. Rows other transactions hold are skipped, so that instances claim different
   * ones side by side and share the backlog. SQLite: BEGIN IMMEDIATE. PostgreSQL: `FOR UPDATE SKIP LOCKED`.
   */
  lockNextApprovedAsync(): Promise<ApprovalRecord | undefined>;
  /** Undefined when this approver already decided this request (the unique (request, approver) key). */
  insertDecision(decision: { requestId: string; approverId: string; verdict: Verdict; reason: string; now: number; grant?: string | null | undefined }): Promise<DecisionRecord | undefined>;
  /** Approvals that still count: their approver is active and may still approve. */
  countApprovals(requestId: string): Promise<number>;
  /** The state machine's one move: `from` → `to` only if the status still is `from`. */
  transition(id: string, from: ApprovalStatus, to: ApprovalStatus, fields?: TransitionFields): Promise<ApprovalRecord | undefined>;
  /**
   * approved with execution `pending` → `running` for one instance: at most one caller ever gets
   * the record, and never an instance a peer has declared dead (fenced: its row is marked stopped).
   */
  claimExecution(id: string, instanceId: string, now: number): Promise<ApprovalRecord | undefined>;
  /** `running` → succeeded or failed, with the result. */
  finishExecution(id: string, outcome: { status: 'succeeded' | 'failed'; result?: string | null; error?: string | null; now: number }): Promise<ApprovalRecord | undefined>;
  /**
   * Ends an execution that will not finish normally, if it still is `from`: never started
   * (`pending` → `failed`), claimed but the tool never started (`running` → `failed`), or its
   * instance is gone (`running` → `interrupted`: it may or may not have run; never retried).
   */
  endExecution(id: string, change: { from: 'pending' | 'running'; to: 'failed' | 'interrupted'; error: string; now: number }): Promise<ApprovalRecord | undefined>;
  insertGrant(grant: ApprovalGrant): Promise<void>;
  /**
   * Uses one call of a grant: a conditional update (`uses_left > 0`, not revoked, not expired) that
   * returns the grant as it now is, or undefined when it had no call left. Concurrent callers of a
   * grant with N calls left get at most N grants back, on any database.
   */
  consumeGrant(id: string, now: number): Promise<ApprovalGrant | undefined>;
  /** Revokes a live grant; undefined when it was already revoked (or does not exist). */
  revokeGrant(id: string, by: string, reason: string, now: number): Promise<ApprovalGrant | undefined>;
  /** Revokes every unrevoked grant made for `userId` or approved by them; returns those revoked. */
  revokeGrantsOf(userId: string, by: string, reason: string, now: number): Promise<ApprovalGrant[]>;
  /** Deletes up to `limit` decided requests made before `cutoff` (never pending or running); returns how many. */
  deleteDecidedBefore(cutoff: number, limit?: number): Promise<number>;
}

/** One gateway process; a stale heartbeat means it is gone. */
export interface InstanceRecord {
  id: string;
  hostname: string;
  pid: number;
  startedAt: number;
  heartbeatAt: number;
  stoppedAt: number | null;
}

export interface InstanceReads {
  liveInstancesOtherThan(id: string): Promise<InstanceRecord[]>;
  /**
   * The database's own clock (epoch ms), when it has one apart from this host's: heartbeats and
   * staleness are measured on it, since the clocks of several hosts drift. Undefined on SQLite,
   * whose processes share one host's clock.
   */
  databaseTime(): Promise<number | undefined>;
}

/** The registry of gateway instances (heartbeats, fencing of the dead). */
export interface InstanceStore extends InstanceReads {
  registerInstance(row: { id: string; hostname: string; pid: number; now: number }): Promise<void>;
  /** Undefined when the instance is marked stopped: a peer declared it dead (it is fenced off). */
  heartbeat(id: string, now: number): Promise<InstanceRecord | undefined>;
  /** Marks a silent instance stopped only if its heartbeat is still `seenHeartbeatAt`: exactly one caller gets the record. */
  fenceInstance(id: string, seenHeartbeatAt: number, now: number): Promise<InstanceRecord | undefined>;
  markInstanceStopped(id: string, now: number): Promise<void>;
}
