import { and, asc, desc, eq, exists, getTableColumns, gt, gte, inArray, isNotNull, isNull, lt, lte, ne, not, or, sql, type Placeholder, type SQL } from 'drizzle-orm';
import type { SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { Verdict, ApprovalStatus, Sensitivity } from '../approvals/approval.js';
import type {
  ApprovalRecord,
  ApprovalStore,
  DecisionRecord,
  HistoryFilter,
  InstanceRecord,
  InstanceStore,
  PendingCaps,
  PendingSummaryRecord,
  TransitionFields,
  ApprovalGrant,
} from '../approvals/approval-store.js';
import type { AuditCheckpointRecord, AuditFilter, AuditRange, AuditRecord, AuditStore, ChainHead, LogPosition, NewAuditRecord } from '../audit/audit-store.js';
import type { IdentityStore, SessionPrincipalRecord, SessionRecord, TokenPrincipalRecord, UserRecord } from '../auth/identity-store.js';
import type { MetaStore } from '../core/persistence.js';
import type { LimitStore } from '../limits/limit-store.js';
import type { GrantRecord, PolicyStore, ToolPolicyRecord } from '../policy/policy-store.js';
import type { Db } from './client.js';
import { apiTokens, approvalDecisions, approvalGrants, approvalRequests, auditCheckpoints, auditEvents, consoleSessions, instances, meta, rateWindows, rolePermissions, roles, toolPolicies, users } from './schema.js';

const p = sql.placeholder;
/** A grant with calls left (null: no count, bounded by its expiry). */
const liveUses = or(isNull(approvalGrants.usesLeft), gt(approvalGrants.usesLeft, 0));
const count = sql<number>`count(*)`;

/** `{ column: placeholder(column) }` for every column: a prepared INSERT of a whole record. */
function everyColumn<T extends SQLiteTable>(table: T): { [K in keyof T['$inferInsert']]-?: Placeholder } {
  return Object.fromEntries(Object.keys(getTableColumns(table)).map((key) => [key, p(key)])) as { [K in keyof T['$inferInsert']]-?: Placeholder };
}

/** Every column but `omitted`: an INSERT that leaves that column to the database. */
function everyColumnBut<T extends SQLiteTable>(table: T, omitted: keyof T['$inferInsert']) {
  const { [omitted]: _omitted, ...rest } = everyColumn(table);
  return rest as unknown as { [K in keyof T['$inferInsert']]-?: Placeholder };
}

/** The events of one chain (null: the chain from before per-writer chains). */
function sameChain(chain: string | null): SQL {
  return chain === null ? isNull(auditEvents.chain) : eq(auditEvents.chain, chain);
}

/** An approval still counts: its approver is active and their role may still approve. */
function approverStillApproves(approverId: SQL | typeof approvalDecisions.approverId, db: Db): SQL {
  return exists(
    db
      .select({ one: sql`1` })
      .from(users)
      .innerJoin(rolePermissions, and(eq(rolePermissions.role, users.role), eq(rolePermissions.permission, 'approval.manage')))
      .where(and(eq(users.id, approverId), eq(users.active, true))),
  );
}

/**
 * Every table's statements on one SQLite connection, prepared once with Drizzle (placeholders
 * where a statement runs per request). Synchronous underneath: better-sqlite3 runs each statement
 * to completion, so the async methods only wrap their results. The store builds one set on the
 * writing connection, used inside transactions, and one on the reading connection.
 */
export class SqliteTables implements ApprovalStore, InstanceStore, IdentityStore, PolicyStore, AuditStore, MetaStore, LimitStore {
  private readonly q;

  constructor(private readonly db: Db) {
    const decisionFields = { ...getTableColumns(approvalDecisions), withdrawn: not(approverStillApproves(approvalDecisions.approverId, db)).mapWith(Boolean) };
    const pending = eq(approvalRequests.status, 'pending');
    const { arguments: _args, ...requestWithoutArguments } = getTableColumns(approvalRequests);
    const argumentsBytes = sql<number>`octet_length(${approvalRequests.arguments})`;
    this.q = {
      // ---- requests and decisions
      requestById: db.select().from(approvalRequests).where(eq(approvalRequests.id, p('id'))).prepare(),
      insertRequest: db.insert(approvalRequests).values(everyColumn(approvalRequests)).prepare(),
      decisionsOf: db.select(decisionFields).from(approvalDecisions).where(eq(approvalDecisions.requestId, p('requestId'))).orderBy(asc(approvalDecisions.id)).prepare(),
      decisionsFor: db
        .select(decisionFields)
        .from(approvalDecisions)
        .where(sql`${approvalDecisions.requestId} in (select value from json_each(${p('ids')}))`)
        .orderBy(asc(approvalDecisions.id))
        .prepare(),
      // Every id character sorts below 'g', so [prefix, prefix + 'g') is exactly the ids that start with it.
      idsWithPrefix: db
        .select({ id: approvalRequests.id })
        .from(approvalRequests)
        .where(and(gte(approvalRequests.id, p('from')), lt(approvalRequests.id, p('to'))))
        .limit(p('limit'))
        .prepare(),
      listPending: db.select().from(approvalRequests).where(pending).orderBy(asc(approvalRequests.requestedAt), asc(approvalRequests.id)).limit(p('limit')).prepare(),
      // Large arguments stay in the database: octet_length reads their size from the record header
      // without loading the value (length() would load it).
      listPendingBounded: db
        .select({
          ...requestWithoutArguments,
          arguments: sql<string | null>`case when ${argumentsBytes} <= ${p('maxBytes')} then ${approvalRequests.arguments} end`,
          argumentsBytes,
        })
        .from(approvalRequests)
        .where(pending)
        .orderBy(asc(approvalRequests.requestedAt), asc(approvalRequests.id))
        .limit(p('limit'))
        .prepare(),
      countPending: db.select({ n: count }).from(approvalRequests).where(pending).prepare(),
      // Counted up to the cap only, so the check costs the same at any backlog. Through the status
      // index: pending rows are few (the global cap), so no index on the requester is needed.
      pendingUpTo: db
        .select({ n: count })
        .from(db.select({ one: sql`1` }).from(approvalRequests).where(pending).limit(p('limit')).as('capped'))
        .prepare(),
      pendingOfRequesterUpTo: db
        .select({ n: count })
        .from(
          db
            .select({ one: sql`1` })
            .from(approvalRequests)
            .where(and(pending, eq(approvalRequests.requesterId, p('requesterId'))))
            .limit(p('limit'))
            .as('capped'),
        )
        .prepare(),
      insertDecision: db
        .insert(approvalDecisions)
        .values({ requestId: p('requestId'), approverId: p('approverId'), verdict: p('verdict'), reason: p('reason'), decidedAt: p('now'), grant: p('grant') })
        .onConflictDoNothing({ target: [approvalDecisions.requestId, approvalDecisions.approverId] })
        .returning()
        .prepare(),
      countApprovals: db
        .select({ n: count })
        .from(approvalDecisions)
        .where(and(eq(approvalDecisions.requestId, p('requestId')), eq(approvalDecisions.verdict, 'approve'), approverStillApproves(approvalDecisions.approverId, db)))
        .prepare(),
      // A field given as null (left undefined by the caller) keeps its value.
      transition: db
        .update(approvalRequests)
        .set({
          status: sql`${p('to')}`,
          decidedAt: sql`coalesce(${p('decidedAt')}, ${approvalRequests.decidedAt})`,
          statusReason: sql`coalesce(${p('statusReason')}, ${approvalRequests.statusReason})`,
          executionStatus: sql`coalesce(${p('executionStatus')}, ${approvalRequests.executionStatus})`,
        })
        .where(and(eq(approvalRequests.id, p('id')), eq(approvalRequests.status, p('from'))))
        .returning()
        .prepare(),
      claimExecution: db
        .update(approvalRequests)
        .set({ executionStatus: 'running', executionInstanceId: sql`${p('instanceId')}`, executionStartedAt: sql`${p('now')}` })
        .where(
          and(
            eq(approvalRequests.id, p('id')),
            eq(approvalRequests.status, 'approved'),
            eq(approvalRequests.executionStatus, 'pending'),
            // A fenced instance claims nothing, even before it has noticed it was declared dead.
            not(exists(db.select({ one: sql`1` }).from(instances).where(and(eq(instances.id, p('instanceId')), isNotNull(instances.stoppedAt))))),
          ),
        )
        .returning()
        .prepare(),
      finishExecution: db
        .update(approvalRequests)
        .set({ executionStatus: sql`${p('status')}`, executionFinishedAt: sql`${p('now')}`, result: sql`${p('result')}`, executionError: sql`${p('error')}` })
        .where(and(eq(approvalRequests.id, p('id')), eq(approvalRequests.executionStatus, 'running')))
        .returning()
        .prepare(),
      endExecution: db
        .update(approvalRequests)
        .set({ executionStatus: sql`${p('to')}`, executionFinishedAt: sql`${p('now')}`, executionError: sql`${p('error')}` })
        .where(and(eq(approvalRequests.id, p('id')), eq(approvalRequests.executionStatus, p('from'))))
        .returning()
        .prepare(),
      // ---- identity
      principalByTokenHash: db
        .select({ userId: users.id, role: users.role, active: users.active, tokenId: apiTokens.id, tokenHash: apiTokens.tokenHash })
        .from(apiTokens)
        .innerJoin(users, eq(users.id, apiTokens.userId))
        .where(and(eq(apiTokens.tokenHash, p('hash')), isNull(apiTokens.revokedAt)))
        .prepare(),
      userById: db.select().from(users).where(eq(users.id, p('id'))).prepare(),
      tokenById: db.select({ revokedAt: apiTokens.revokedAt }).from(apiTokens).where(eq(apiTokens.id, p('id'))).prepare(),
      sessionBySecretHash: db
        .select({
          sessionId: consoleSessions.id,
          userId: users.id,
          role: users.role,
          active: users.active,
          secretHash: consoleSessions.secretHash,
          expiresAt: consoleSessions.expiresAt,
        })
        .from(consoleSessions)
        .innerJoin(users, eq(users.id, consoleSessions.userId))
        .where(and(eq(consoleSessions.secretHash, p('hash')), isNull(consoleSessions.revokedAt)))
        .prepare(),
      // ---- audit
      // By max(seq), not `order by seq desc limit ?`: SQLite runs a bound LIMIT several times slower here, on every audited write.
      lastAudit: db
        .select({ seq: auditEvents.seq, hash: auditEvents.hash })
        .from(auditEvents)
        .where(eq(auditEvents.seq, sql`(select max(${auditEvents.seq}) from ${auditEvents})`))
        .prepare(),
      insertAudit: db
        .insert(auditEvents)
        .values(everyColumnBut(auditEvents, 'seq'))
        .returning({ seq: auditEvents.seq })
        .prepare(),
      auditAt: db.select({ at: auditEvents.at, seq: auditEvents.seq }).from(auditEvents).where(eq(auditEvents.seq, p('seq'))).prepare(),
      // The chains, found by hopping through the (chain, seq) index from one to the next rather than
      // reading every event, then each one's newest event; the chain from before per-writer chains last.
      auditChainHeads: db
        .select({ chain: auditEvents.chain, chainSeq: auditEvents.chainSeq, seq: auditEvents.seq, hash: auditEvents.hash })
        .from(auditEvents)
        .where(
          sql`${auditEvents.seq} in (
            with recursive chains(name) as (
              select min(chain) from audit_events
              union all
              select (select min(chain) from audit_events where chain > chains.name) from chains where chains.name is not null
            )
            select (select max(seq) from audit_events where chain = chains.name) from chains where chains.name is not null
            union all
            select max(seq) from audit_events where chain is null
          )`,
        )
        .orderBy(asc(auditEvents.seq))
        .prepare(),
      auditEventsAfter: db
        .select({ seq: auditEvents.seq, action: auditEvents.action, requestId: auditEvents.requestId, instanceId: auditEvents.instanceId })
        .from(auditEvents)
        .where(gt(auditEvents.seq, p('seq')))
        .orderBy(asc(auditEvents.seq))
        .limit(p('limit'))
        .prepare(),
      auditInOrder: db
        .select()
        .from(auditEvents)
        .where(and(gt(auditEvents.seq, p('after')), lte(auditEvents.seq, p('through'))))
        .orderBy(asc(auditEvents.seq))
        .limit(p('limit'))
        .prepare(),
      ping: db.select({ ok: sql<number>`1` }).from(sql`(select 1)`).prepare(),
    };
  }

  /** Resolves when a trivial query runs on this connection. */
  async ping(): Promise<void> {
    this.q.ping.get();
  }

  // ---- approval requests and decisions ---------------------------------------------------

  async request(id: string): Promise<ApprovalRecord | undefined> {
    return this.q.requestById.get({ id });
  }

  async decisions(requestId: string): Promise<DecisionRecord[]> {
    return this.q.decisionsOf.all({ requestId });
  }

  async decisionsFor(requestIds: readonly string[]): Promise<DecisionRecord[]> {
    if (requestIds.length === 0) return [];
    return this.q.decisionsFor.all({ ids: JSON.stringify(requestIds) });
  }

  async idsWithPrefix(prefix: string, limit = 2): Promise<string[]> {
    return this.q.idsWithPrefix.all({ from: prefix, to: `${prefix}g`, limit }).map((r) => r.id);
  }

  async listPending(limit: number): Promise<ApprovalRecord[]> {
    return this.q.listPending.all({ limit });
  }

  async listPendingBounded(limit: number, maxArgumentBytes: number): Promise<PendingSummaryRecord[]> {
    return this.q.listPendingBounded.all({ limit, maxBytes: maxArgumentBytes });
  }

  async history(filter: HistoryFilter, maxArgumentBytes: number): Promise<PendingSummaryRecord[]> {
    const { arguments: _args, ...withoutArguments } = getTableColumns(approvalRequests);
    const argumentsBytes = sql<number>`octet_length(${approvalRequests.arguments})`;
    const where: SQL[] = [];
    if (filter.statuses && filter.statuses.length > 0) where.push(inArray(approvalRequests.status, [...filter.statuses]));
    if (filter.tool) where.push(eq(approvalRequests.tool, filter.tool));
    if (filter.requesterId) where.push(eq(approvalRequests.requesterId, filter.requesterId));
    if (filter.since !== undefined) where.push(gte(approvalRequests.requestedAt, filter.since));
    if (filter.before !== undefined) where.push(lt(approvalRequests.requestedAt, filter.before));
    return this.db
      .select({
        ...withoutArguments,
        arguments: sql<string | null>`case when ${argumentsBytes} <= ${maxArgumentBytes} then ${approvalRequests.arguments} end`,
        argumentsBytes,
      })
      .from(approvalRequests)
      .where(and(...where))
      .orderBy(desc(approvalRequests.requestedAt), desc(approvalRequests.id))
      .limit(filter.limit)
      .all();
  }

  async countPending(): Promise<number> {
    return this.q.countPending.get()!.n;
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = this.db.select({ status: approvalRequests.status, n: count }).from(approvalRequests).groupBy(approvalRequests.status).all();
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async pendingOf(filter: { requesterId: string } | { tokenIds: readonly number[] }): Promise<ApprovalRecord[]> {
    if ('tokenIds' in filter && filter.tokenIds.length === 0) return [];
    const who = 'requesterId' in filter ? eq(approvalRequests.requesterId, filter.requesterId) : inArray(approvalRequests.tokenId, [...filter.tokenIds]);
    return this.db.select().from(approvalRequests).where(and(eq(approvalRequests.status, 'pending'), who)).all();
  }

  async pendingDueBy(now: number, limit = 1000): Promise<ApprovalRecord[]> {
    return this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.status, 'pending'), lte(approvalRequests.expiresAt, now)))
      .limit(limit)
      .all();
  }

  // Within BEGIN IMMEDIATE nobody else claims until this transaction ends.
  async lockNextApprovedAsync(): Promise<ApprovalRecord | undefined> {
    return this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.executionStatus, 'pending'), eq(approvalRequests.status, 'approved'), eq(approvalRequests.mode, 'async')))
      .orderBy(asc(approvalRequests.decidedAt), asc(approvalRequests.id))
      .limit(1)
      .get();
  }

  async approvedAsyncAwaitingExecution(limit = 100): Promise<ApprovalRecord[]> {
    return this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.executionStatus, 'pending'), eq(approvalRequests.status, 'approved'), eq(approvalRequests.mode, 'async')))
      .limit(limit)
      .all();
  }

  async orphansOf(instanceId: string) {
    const ofWaits = (where: SQL | undefined) =>
      this.db
        .select()
        .from(approvalRequests)
        .where(and(eq(approvalRequests.instanceId, instanceId), eq(approvalRequests.mode, 'wait'), where))
        .all();
    return {
      pendingWaits: ofWaits(eq(approvalRequests.status, 'pending')),
      unclaimedWaits: ofWaits(eq(approvalRequests.executionStatus, 'pending')),
      running: this.db
        .select()
        .from(approvalRequests)
        .where(and(eq(approvalRequests.executionInstanceId, instanceId), eq(approvalRequests.executionStatus, 'running')))
        .all(),
    };
  }

  // Within BEGIN IMMEDIATE, this connection holds the only write lock on the file: nothing else
  // can insert a pending request, decide or append between this read and the transaction's end.
  async reservePendingSlot(caps: PendingCaps): Promise<'reserved' | 'global_cap' | 'requester_cap'> {
    if (this.q.pendingUpTo.get({ limit: caps.max })!.n >= caps.max) return 'global_cap';
    const perRequester = caps.maxPerRequester;
    if (perRequester !== undefined && this.q.pendingOfRequesterUpTo.get({ requesterId: caps.requesterId, limit: perRequester })!.n >= perRequester) {
      return 'requester_cap';
    }
    return 'reserved';
  }

  async insertRequest(record: ApprovalRecord): Promise<void> {
    this.q.insertRequest.run(record as unknown as Record<string, unknown>);
  }

  async lockForDecision(id: string): Promise<ApprovalRecord | undefined> {
    return this.q.requestById.get({ id });
  }

  async insertDecision(d: { requestId: string; approverId: string; verdict: Verdict; reason: string; now: number; grant?: string | null | undefined }): Promise<DecisionRecord | undefined> {
    const row = this.q.insertDecision.get({ ...d, grant: d.grant ?? null });
    return row && { ...row, withdrawn: false };
  }

  async countApprovals(requestId: string): Promise<number> {
    return this.q.countApprovals.get({ requestId })!.n;
  }

  async transition(id: string, from: ApprovalStatus, to: ApprovalStatus, fields: TransitionFields = {}): Promise<ApprovalRecord | undefined> {
    return this.q.transition.get({
      id,
      from,
      to,
      decidedAt: fields.decidedAt ?? null,
      statusReason: fields.statusReason ?? null,
      executionStatus: fields.executionStatus ?? null,
    });
  }

  async claimExecution(id: string, instanceId: string, now: number): Promise<ApprovalRecord | undefined> {
    return this.q.claimExecution.get({ id, instanceId, now });
  }

  async finishExecution(id: string, o: { status: 'succeeded' | 'failed'; result?: string | null; error?: string | null; now: number }): Promise<ApprovalRecord | undefined> {
    return this.q.finishExecution.get({ id, status: o.status, now: o.now, result: o.result ?? null, error: o.error ?? null });
  }

  async endExecution(id: string, c: { from: 'pending' | 'running'; to: 'failed' | 'interrupted'; error: string; now: number }): Promise<ApprovalRecord | undefined> {
    return this.q.endExecution.get({ id, from: c.from, to: c.to, error: c.error, now: c.now });
  }

  // ---- standing approvals ----------------------------------------------------------------

  async grantById(id: string): Promise<ApprovalGrant | undefined> {
    return this.db.select().from(approvalGrants).where(eq(approvalGrants.id, id)).get();
  }

  async liveGrantsFor(tool: string, requesterId: string, now: number): Promise<ApprovalGrant[]> {
    return this.db
      .select()
      .from(approvalGrants)
      .where(and(eq(approvalGrants.tool, tool), eq(approvalGrants.requesterId, requesterId), gt(approvalGrants.expiresAt, now), isNull(approvalGrants.revokedAt), liveUses))
      .orderBy(asc(approvalGrants.createdAt))
      .all();
  }

  async listGrants(filter: { liveAt?: number | undefined; limit: number }): Promise<ApprovalGrant[]> {
    const live = filter.liveAt === undefined ? undefined : and(gt(approvalGrants.expiresAt, filter.liveAt), isNull(approvalGrants.revokedAt), liveUses);
    return this.db.select().from(approvalGrants).where(live).orderBy(desc(approvalGrants.createdAt)).limit(filter.limit).all();
  }

  async insertGrant(grant: ApprovalGrant): Promise<void> {
    this.db.insert(approvalGrants).values(grant).run();
  }

  async consumeGrant(id: string, now: number): Promise<ApprovalGrant | undefined> {
    return this.db
      .update(approvalGrants)
      .set({ usesLeft: sql`${approvalGrants.usesLeft} - 1`, uses: sql`${approvalGrants.uses} + 1` })
      .where(and(eq(approvalGrants.id, id), gt(approvalGrants.usesLeft, 0), isNull(approvalGrants.revokedAt), gt(approvalGrants.expiresAt, now)))
      .returning()
      .get();
  }

  async revokeGrant(id: string, by: string, reason: string, now: number): Promise<ApprovalGrant | undefined> {
    return this.db
      .update(approvalGrants)
      .set({ revokedAt: now, revokedBy: by, revokeReason: reason })
      .where(and(eq(approvalGrants.id, id), isNull(approvalGrants.revokedAt)))
      .returning()
      .get();
  }

  async revokeGrantsOf(userId: string, by: string, reason: string, now: number): Promise<ApprovalGrant[]> {
    const approvedBy = sql`exists (select 1 from json_each(${approvalGrants.approvers}) where value = ${userId})`;
    return this.db
      .update(approvalGrants)
      .set({ revokedAt: now, revokedBy: by, revokeReason: reason })
      .where(and(isNull(approvalGrants.revokedAt), or(eq(approvalGrants.requesterId, userId), approvedBy)))
      .returning()
      .all();
  }

  async deleteDecidedBefore(cutoff: number, limit = 1000): Promise<number> {
    const doomed = this.db
      .select({ id: approvalRequests.id })
      .from(approvalRequests)
      .where(and(ne(approvalRequests.status, 'pending'), lt(approvalRequests.requestedAt, cutoff), ne(approvalRequests.executionStatus, 'running')))
      .limit(limit);
    return this.db.delete(approvalRequests).where(inArray(approvalRequests.id, doomed)).run().changes;
  }

  // ---- instances ------------------------------------------------------------------------

  async liveInstancesOtherThan(id: string): Promise<InstanceRecord[]> {
    return this.db
      .select()
      .from(instances)
      .where(and(ne(instances.id, id), isNull(instances.stoppedAt)))
      .all();
  }

  // Every process on the file runs on this host's clock.
  async databaseTime(): Promise<number | undefined> {
    return undefined;
  }

  async registerInstance(row: { id: string; hostname: string; pid: number; now: number }): Promise<void> {
    this.db.insert(instances).values({ id: row.id, hostname: row.hostname, pid: row.pid, startedAt: row.now, heartbeatAt: row.now }).run();
  }

  async heartbeat(id: string, now: number): Promise<InstanceRecord | undefined> {
    return this.db.update(instances).set({ heartbeatAt: now }).where(and(eq(instances.id, id), isNull(instances.stoppedAt))).returning().get();
  }

  async fenceInstance(id: string, seenHeartbeatAt: number, now: number): Promise<InstanceRecord | undefined> {
    return this.db
      .update(instances)
      .set({ stoppedAt: now })
      .where(and(eq(instances.id, id), eq(instances.heartbeatAt, seenHeartbeatAt), isNull(instances.stoppedAt)))
      .returning()
      .get();
  }

  async markInstanceStopped(id: string, now: number): Promise<void> {
    this.db.update(instances).set({ stoppedAt: now }).where(eq(instances.id, id)).run();
  }

  // ---- users and tokens -----------------------------------------------------------------

  async principalByTokenHash(hash: string): Promise<TokenPrincipalRecord | undefined> {
    return this.q.principalByTokenHash.get({ hash });
  }

  async user(id: string): Promise<UserRecord | undefined> {
    return this.q.userById.get({ id });
  }

  async listUsers() {
    const liveTokens = this.db
      .select({ n: count })
      .from(apiTokens)
      .where(and(eq(apiTokens.userId, users.id), isNull(apiTokens.revokedAt)));
    return this.db
      .select({ id: users.id, role: users.role, active: users.active, createdAt: users.createdAt, tokens: sql<number>`(${liveTokens})` })
      .from(users)
      .orderBy(asc(users.id))
      .all();
  }

  async countUsers(): Promise<number> {
    return this.db.select({ n: count }).from(users).get()!.n;
  }

  async tokenIds(): Promise<number[]> {
    return this.db.select({ id: apiTokens.id }).from(apiTokens).all().map((r) => r.id);
  }

  async requesterStanding(userId: string, tokenId: number | null): Promise<{ userActive: boolean | null; tokenLive: boolean | null }> {
    const user = this.q.userById.get({ id: userId });
    const token = tokenId === null ? undefined : this.q.tokenById.get({ id: tokenId });
    return { userActive: user ? user.active : null, tokenLive: tokenId === null ? null : token !== undefined && token.revokedAt === null };
  }

  async sessionBySecretHash(hash: string): Promise<SessionPrincipalRecord | undefined> {
    return this.q.sessionBySecretHash.get({ hash });
  }

  async liveSessions(now: number, userId?: string): Promise<SessionRecord[]> {
    const { secretHash: _hash, ...fields } = getTableColumns(consoleSessions);
    return this.db
      .select(fields)
      .from(consoleSessions)
      .where(and(isNull(consoleSessions.revokedAt), gt(consoleSessions.expiresAt, now), userId === undefined ? undefined : eq(consoleSessions.userId, userId)))
      .orderBy(desc(consoleSessions.createdAt), asc(consoleSessions.id))
      .all();
  }

  async insertUser(row: { id: string; role: string; now: number }): Promise<void> {
    this.db.insert(users).values({ id: row.id, role: row.role, active: true, createdAt: row.now }).run();
  }

  async setUserActive(id: string, active: boolean, now: number): Promise<UserRecord | undefined> {
    return this.db.update(users).set({ active, disabledAt: active ? null : now }).where(eq(users.id, id)).returning().get();
  }

  async insertToken(row: { userId: string; tokenHash: string; prefix: string; now: number }): Promise<number> {
    return this.db.insert(apiTokens).values({ userId: row.userId, tokenHash: row.tokenHash, prefix: row.prefix, createdAt: row.now }).returning({ id: apiTokens.id }).get().id;
  }

  async revokeTokens(userId: string, now: number): Promise<number[]> {
    return this.db
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id })
      .all()
      .map((r) => r.id);
  }

  async insertSession(row: Omit<SessionRecord, 'revokedAt'> & { secretHash: string }): Promise<void> {
    this.db.insert(consoleSessions).values({ ...row, revokedAt: null }).run();
  }

  async revokeSession(id: string, now: number): Promise<SessionRecord | undefined> {
    const { secretHash: _hash, ...fields } = getTableColumns(consoleSessions);
    return this.db
      .update(consoleSessions)
      .set({ revokedAt: now })
      .where(and(eq(consoleSessions.id, id), isNull(consoleSessions.revokedAt)))
      .returning(fields)
      .get();
  }

  async revokeSessionsOf(userId: string, now: number): Promise<string[]> {
    return this.db
      .update(consoleSessions)
      .set({ revokedAt: now })
      .where(and(eq(consoleSessions.userId, userId), isNull(consoleSessions.revokedAt)))
      .returning({ id: consoleSessions.id })
      .all()
      .map((r) => r.id);
  }

  async deleteSessionsEndedBefore(cutoff: number): Promise<number> {
    return this.db.delete(consoleSessions).where(or(lt(consoleSessions.expiresAt, cutoff), lt(consoleSessions.revokedAt, cutoff))).run().changes;
  }

  async deleteUsersAndTokens(): Promise<void> {
    this.db.delete(consoleSessions).run();
    this.db.delete(apiTokens).run();
    this.db.delete(users).run();
  }

  // ---- roles, grants, tool policies -----------------------------------------------------

  async roleNames(): Promise<string[]> {
    return this.db.select({ name: roles.name }).from(roles).orderBy(asc(roles.name)).all().map((r) => r.name);
  }

  async rolePermissions(): Promise<GrantRecord[]> {
    return this.db.select().from(rolePermissions).all();
  }

  async toolPolicies(): Promise<ToolPolicyRecord[]> {
    return this.db.select().from(toolPolicies).all();
  }

  async upsertRole(name: string, description: string, now: number): Promise<void> {
    this.db.insert(roles).values({ name, description, createdAt: now }).onConflictDoUpdate({ target: roles.name, set: { description } }).run();
  }

  async grant(role: string, permission: string): Promise<void> {
    this.db.insert(rolePermissions).values({ role, permission }).onConflictDoNothing().run();
  }

  async upsertToolPolicy(tool: string, sensitivity: Sensitivity, description = ''): Promise<void> {
    this.db.insert(toolPolicies).values({ tool, sensitivity, description }).onConflictDoUpdate({ target: toolPolicies.tool, set: { sensitivity, description } }).run();
  }

  async deleteGrantsAndPolicies(): Promise<void> {
    this.db.delete(rolePermissions).run();
    this.db.delete(toolPolicies).run();
  }

  // ---- audit ----------------------------------------------------------------------------

  async lastAudit(): Promise<LogPosition | undefined> {
    return this.q.lastAudit.get();
  }

  async insertAudit(record: NewAuditRecord): Promise<number> {
    return this.q.insertAudit.get(record as unknown as Record<string, unknown>)!.seq;
  }

  // Within BEGIN IMMEDIATE no other writer can change anything until this transaction ends.
  async lockAuditMaintenance(): Promise<void> {}

  async auditChainHeads(): Promise<ChainHead[]> {
    return this.q.auditChainHeads.all();
  }

  async lastOfChainBefore(chain: string | null, at: number, belowSeq: number): Promise<ChainHead | undefined> {
    return this.db
      .select({ chain: auditEvents.chain, chainSeq: auditEvents.chainSeq, seq: auditEvents.seq, hash: auditEvents.hash })
      .from(auditEvents)
      .where(and(sameChain(chain), lt(auditEvents.at, at), lt(auditEvents.seq, belowSeq)))
      .orderBy(desc(auditEvents.seq))
      .limit(1)
      .get();
  }

  async auditEvent(seq: number): Promise<AuditRecord | undefined> {
    return this.db.select().from(auditEvents).where(eq(auditEvents.seq, seq)).get();
  }

  async auditPage(filter: AuditFilter): Promise<AuditRecord[]> {
    const where: (SQL | undefined)[] = [];
    if (filter.user) where.push(eq(auditEvents.actor, filter.user));
    if (filter.tool) where.push(eq(auditEvents.tool, filter.tool));
    if (filter.action) where.push(eq(auditEvents.action, filter.action));
    if (filter.requestId) where.push(eq(auditEvents.requestId, filter.requestId));
    if (filter.since !== undefined) where.push(gte(auditEvents.at, filter.since));
    if (filter.beforeSeq !== undefined) {
      const before = this.q.auditAt.get({ seq: filter.beforeSeq });
      // Events logged before it: earlier in time, or at the same millisecond with a smaller seq.
      where.push(
        before
          ? or(lt(auditEvents.at, before.at), and(eq(auditEvents.at, before.at), lt(auditEvents.seq, before.seq)))
          : lt(auditEvents.seq, filter.beforeSeq),
      );
    }
    return this.db
      .select()
      .from(auditEvents)
      .where(and(...where))
      .orderBy(desc(auditEvents.at), desc(auditEvents.seq))
      .limit(filter.limit)
      .all();
  }

  async auditEventsAfter(seq: number, limit = 1000) {
    return this.q.auditEventsAfter.all({ seq, limit });
  }

  async *auditInOrder(pageSize = 5000, range: AuditRange = {}): AsyncIterable<AuditRecord> {
    let after = range.after ?? -1;
    const through = range.through === undefined || !Number.isFinite(range.through) ? Number.MAX_SAFE_INTEGER : range.through;
    const ofChain = range.chain === undefined ? undefined : sameChain(range.chain);
    for (;;) {
      const page = ofChain
        ? this.db
            .select()
            .from(auditEvents)
            .where(and(ofChain, gt(auditEvents.seq, after), lte(auditEvents.seq, through)))
            .orderBy(asc(auditEvents.seq))
            .limit(pageSize)
            .all()
        : this.q.auditInOrder.all({ after, through, limit: pageSize });
      if (page.length === 0) return;
      yield* page;
      after = page[page.length - 1]!.seq;
    }
  }

  async deleteChainThrough(chain: string | null, seq: number): Promise<number> {
    return this.db
      .delete(auditEvents)
      .where(and(sameChain(chain), lte(auditEvents.seq, seq)))
      .run().changes;
  }

  async auditCheckpoints(): Promise<AuditCheckpointRecord[]> {
    return this.db.select().from(auditCheckpoints).orderBy(asc(auditCheckpoints.seq)).all();
  }

  async auditCheckpointsNewestFirst(limit: number): Promise<AuditCheckpointRecord[]> {
    return this.db.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.seq)).limit(limit).all();
  }

  async insertAuditCheckpoint(record: AuditCheckpointRecord): Promise<AuditCheckpointRecord | undefined> {
    return this.db.insert(auditCheckpoints).values(record).onConflictDoNothing().returning().get();
  }

  async deleteAuditCheckpointsBefore(seq: number): Promise<number> {
    return this.db.delete(auditCheckpoints).where(lt(auditCheckpoints.seq, seq)).run().changes;
  }

  // ---- rate windows ---------------------------------------------------------------------

  async addToWindow(key: string, windowStart: number, n: number, limit: number): Promise<number | undefined> {
    if (n > limit) return undefined;
    return this.db
      .insert(rateWindows)
      .values({ key, windowStart, count: n })
      .onConflictDoUpdate({
        target: [rateWindows.key, rateWindows.windowStart],
        set: { count: sql`${rateWindows.count} + ${n}` },
        setWhere: sql`${rateWindows.count} + ${n} <= ${limit}`,
      })
      .returning({ count: rateWindows.count })
      .get()?.count;
  }

  async deleteWindowsBefore(windowStart: number): Promise<number> {
    return this.db.delete(rateWindows).where(lt(rateWindows.windowStart, windowStart)).run().changes;
  }

  // ---- meta -----------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    return this.db.select({ value: meta.value }).from(meta).where(eq(meta.key, key)).get()?.value;
  }

  async setMeta(key: string, value: string, now: number): Promise<void> {
    this.db.insert(meta).values({ key, value, updatedAt: now }).onConflictDoUpdate({ target: meta.key, set: { value, updatedAt: now } }).run();
  }
}
