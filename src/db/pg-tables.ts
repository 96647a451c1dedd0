import { and, asc, desc, eq, exists, getTableColumns, gt, gte, inArray, isNotNull, isNull, lt, lte, ne, not, or, sql, type SQL } from 'drizzle-orm';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import type { PostgresJsQueryResultHKT } from 'drizzle-orm/postgres-js';
import type { ApprovalStatus, Sensitivity, Verdict } from '../approvals/approval.js';
import type {
  ApprovalGrant,
  HistoryFilter,
  ApprovalRecord,
  ApprovalStore,
  DecisionRecord,
  InstanceRecord,
  InstanceStore,
  PendingCaps,
  PendingSummaryRecord,
  TransitionFields,
} from '../approvals/approval-store.js';
import type { AuditCheckpointRecord, AuditFilter, AuditRange, AuditRecord, AuditStore, ChainHead, LogPosition, NewAuditRecord } from '../audit/audit-store.js';
import type { IdentityStore, SessionPrincipalRecord, SessionRecord, TokenPrincipalRecord, UserRecord } from '../auth/identity-store.js';
import type { MetaStore } from '../core/persistence.js';
import type { LimitStore } from '../limits/limit-store.js';
import type { GrantRecord, PolicyStore, ToolPolicyRecord } from '../policy/policy-store.js';
import { LOCK_NAMESPACE, LOCKS } from './pg-client.js';
import * as schema from './pg-schema.js';
import { apiTokens, approvalDecisions, approvalGrants, approvalRequests, auditCheckpoints, auditEvents, consoleSessions, instances, meta, rateWindows, rolePermissions, roles, toolPolicies, users } from './pg-schema.js';

/** The pool's database or one of its transactions: the same query builder. */
export type PgQueries = PgDatabase<PostgresJsQueryResultHKT, typeof schema>;

/** A grant with calls left (null: no count, bounded by its expiry). */
const liveUses = or(isNull(approvalGrants.usesLeft), gt(approvalGrants.usesLeft, 0));

/** count(*) is a bigint, which postgres.js reads as a string. */
const count = sql<number>`count(*)`.mapWith(Number);

/** Takes one of toolgate's transaction-scoped advisory locks: held until commit or rollback. */
const advisoryLock = (key: number) => sql`select pg_advisory_xact_lock(${sql.raw(String(LOCK_NAMESPACE))}, ${sql.raw(String(key))})`;

/** The events of one chain (null: the chain from before per-writer chains). */
function sameChain(chain: string | null): SQL {
  return chain === null ? isNull(auditEvents.chain) : eq(auditEvents.chain, chain);
}

/** An approval still counts: its approver is active and their role may still approve. */
function approverStillApproves(db: PgQueries): SQL {
  return exists(
    db
      .select({ one: sql`1` })
      .from(users)
      .innerJoin(rolePermissions, and(eq(rolePermissions.role, users.role), eq(rolePermissions.permission, 'approval.manage')))
      .where(and(eq(users.id, approvalDecisions.approverId), eq(users.active, true))),
  );
}

/**
 * Every table's statements on PostgreSQL (postgres.js prepares each statement text once per
 * connection). One instance reads on the pool; each transaction gets its own, on the
 * transaction's connection (`inTransaction`), where the serialisation points take their locks:
 *
 * - the pending caps: a transaction-scoped advisory lock (one key for every cap) taken before
 *   counting, so that under READ COMMITTED each creator counts after the previous one committed;
 * - a decision: `SELECT … FOR UPDATE` on the request row, so the votes of a quorum request are
 *   counted one after another;
 * - the audit log: no lock at all; each writer appends to chains of its own (a unique
 *   (chain, chain_seq) index refuses a fork), and only retention takes an advisory lock.
 *
 * Every other state change is a conditional `UPDATE … WHERE <expected state> RETURNING *`: the
 * second of two racing writers waits for the first's row lock, re-reads the row and matches nothing.
 */
export class PgTables implements ApprovalStore, InstanceStore, IdentityStore, PolicyStore, AuditStore, MetaStore, LimitStore {
  private readonly decisionFields;
  private readonly stillApproves: SQL;

  constructor(
    private readonly db: PgQueries,
    private readonly inTransaction = false,
  ) {
    this.stillApproves = approverStillApproves(db);
    this.decisionFields = { ...getTableColumns(approvalDecisions), withdrawn: not(this.stillApproves).mapWith(Boolean) };
  }

  /** Resolves when a trivial query runs. */
  async ping(): Promise<void> {
    await this.db.execute(sql`select 1`);
  }

  // ---- approval requests and decisions ---------------------------------------------------

  async request(id: string): Promise<ApprovalRecord | undefined> {
    const [row] = await this.db.select().from(approvalRequests).where(eq(approvalRequests.id, id));
    return row;
  }

  async decisions(requestId: string): Promise<DecisionRecord[]> {
    return this.db.select(this.decisionFields).from(approvalDecisions).where(eq(approvalDecisions.requestId, requestId)).orderBy(asc(approvalDecisions.id));
  }

  async decisionsFor(requestIds: readonly string[]): Promise<DecisionRecord[]> {
    if (requestIds.length === 0) return [];
    return this.db
      .select(this.decisionFields)
      .from(approvalDecisions)
      .where(inArray(approvalDecisions.requestId, [...requestIds]))
      .orderBy(asc(approvalDecisions.id));
  }

  // Compared byte-wise (collate "C"): ids are lower-case hex and dashes, whatever the database's collation sorts them as.
  async idsWithPrefix(prefix: string, limit = 2): Promise<string[]> {
    const rows = await this.db
      .select({ id: approvalRequests.id })
      .from(approvalRequests)
      .where(sql`starts_with(${approvalRequests.id}, ${prefix})`)
      .orderBy(sql`${approvalRequests.id} collate "C"`)
      .limit(limit);
    return rows.map((r) => r.id);
  }

  async listPending(limit: number): Promise<ApprovalRecord[]> {
    return this.db
      .select()
      .from(approvalRequests)
      .where(eq(approvalRequests.status, 'pending'))
      .orderBy(asc(approvalRequests.requestedAt), asc(approvalRequests.id))
      .limit(limit);
  }

  // Large arguments stay in the database: octet_length reads a TOASTed value's size without loading it.
  async listPendingBounded(limit: number, maxArgumentBytes: number): Promise<PendingSummaryRecord[]> {
    const { arguments: _args, ...withoutArguments } = getTableColumns(approvalRequests);
    const bytes = sql<number>`octet_length(${approvalRequests.arguments})`.mapWith(Number);
    return this.db
      .select({
        ...withoutArguments,
        arguments: sql<string | null>`case when octet_length(${approvalRequests.arguments}) <= ${maxArgumentBytes} then ${approvalRequests.arguments} end`,
        argumentsBytes: bytes,
      })
      .from(approvalRequests)
      .where(eq(approvalRequests.status, 'pending'))
      .orderBy(asc(approvalRequests.requestedAt), asc(approvalRequests.id))
      .limit(limit);
  }

  async history(filter: HistoryFilter, maxArgumentBytes: number): Promise<PendingSummaryRecord[]> {
    const { arguments: _args, ...withoutArguments } = getTableColumns(approvalRequests);
    const where: SQL[] = [];
    if (filter.statuses && filter.statuses.length > 0) where.push(inArray(approvalRequests.status, [...filter.statuses]));
    if (filter.tool) where.push(eq(approvalRequests.tool, filter.tool));
    if (filter.requesterId) where.push(eq(approvalRequests.requesterId, filter.requesterId));
    if (filter.since !== undefined) where.push(gte(approvalRequests.requestedAt, filter.since));
    if (filter.before !== undefined) where.push(lt(approvalRequests.requestedAt, filter.before));
    return this.db
      .select({
        ...withoutArguments,
        arguments: sql<string | null>`case when octet_length(${approvalRequests.arguments}) <= ${maxArgumentBytes} then ${approvalRequests.arguments} end`,
        argumentsBytes: sql<number>`octet_length(${approvalRequests.arguments})`.mapWith(Number),
      })
      .from(approvalRequests)
      .where(and(...where))
      .orderBy(desc(approvalRequests.requestedAt), desc(sql`${approvalRequests.id} collate "C"`))
      .limit(filter.limit);
  }

  async countPending(): Promise<number> {
    const [row] = await this.db.select({ n: count }).from(approvalRequests).where(eq(approvalRequests.status, 'pending'));
    return row!.n;
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db.select({ status: approvalRequests.status, n: count }).from(approvalRequests).groupBy(approvalRequests.status);
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async pendingOf(filter: { requesterId: string } | { tokenIds: readonly number[] }): Promise<ApprovalRecord[]> {
    if ('tokenIds' in filter && filter.tokenIds.length === 0) return [];
    const who = 'requesterId' in filter ? eq(approvalRequests.requesterId, filter.requesterId) : inArray(approvalRequests.tokenId, [...filter.tokenIds]);
    return this.db.select().from(approvalRequests).where(and(eq(approvalRequests.status, 'pending'), who));
  }

  async pendingDueBy(now: number, limit = 1000): Promise<ApprovalRecord[]> {
    return this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.status, 'pending'), lte(approvalRequests.expiresAt, now)))
      .limit(limit);
  }

  async lockNextApprovedAsync(): Promise<ApprovalRecord | undefined> {
    this.requireTransaction('lockNextApprovedAsync');
    const [row] = await this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.executionStatus, 'pending'), eq(approvalRequests.status, 'approved'), eq(approvalRequests.mode, 'async')))
      .orderBy(asc(approvalRequests.decidedAt), asc(approvalRequests.id))
      .limit(1)
      .for('update', { skipLocked: true });
    return row;
  }

  async approvedAsyncAwaitingExecution(limit = 100): Promise<ApprovalRecord[]> {
    return this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.executionStatus, 'pending'), eq(approvalRequests.status, 'approved'), eq(approvalRequests.mode, 'async')))
      .limit(limit);
  }

  async orphansOf(instanceId: string) {
    const ofWaits = (where: SQL) =>
      this.db
        .select()
        .from(approvalRequests)
        .where(and(eq(approvalRequests.instanceId, instanceId), eq(approvalRequests.mode, 'wait'), where));
    const [pendingWaits, unclaimedWaits, running] = await Promise.all([
      ofWaits(eq(approvalRequests.status, 'pending')),
      ofWaits(eq(approvalRequests.executionStatus, 'pending')),
      this.db
        .select()
        .from(approvalRequests)
        .where(and(eq(approvalRequests.executionInstanceId, instanceId), eq(approvalRequests.executionStatus, 'running'))),
    ]);
    return { pendingWaits, unclaimedWaits, running };
  }

  // Serialisation point 1. Counted up to the cap only, so the check costs the same at any backlog.
  async reservePendingSlot(caps: PendingCaps): Promise<'reserved' | 'global_cap' | 'requester_cap'> {
    this.requireTransaction('reservePendingSlot');
    await this.db.execute(advisoryLock(LOCKS.pendingCaps));
    const pending = eq(approvalRequests.status, 'pending');
    const upTo = async (where: SQL | undefined, limit: number) => {
      const capped = this.db.select({ one: sql`1` }).from(approvalRequests).where(where).limit(limit).as('capped');
      const [row] = await this.db.select({ n: count }).from(capped);
      return row!.n;
    };
    if ((await upTo(pending, caps.max)) >= caps.max) return 'global_cap';
    const perRequester = caps.maxPerRequester;
    if (perRequester !== undefined && (await upTo(and(pending, eq(approvalRequests.requesterId, caps.requesterId)), perRequester)) >= perRequester) {
      return 'requester_cap';
    }
    return 'reserved';
  }

  async insertRequest(record: ApprovalRecord): Promise<void> {
    await this.db.insert(approvalRequests).values(record);
  }

  // Serialisation point 2: the row stays locked until the transaction ends.
  async lockForDecision(id: string): Promise<ApprovalRecord | undefined> {
    this.requireTransaction('lockForDecision');
    const [row] = await this.db.select().from(approvalRequests).where(eq(approvalRequests.id, id)).for('update');
    return row;
  }

  // ON CONFLICT DO NOTHING: a second vote of the same approver (the unique (request, approver)
  // index, SQLSTATE 23505 otherwise) is a refusal the core names `already_decided`, never an error
  // that would abort the transaction.
  async insertDecision(d: { requestId: string; approverId: string; verdict: Verdict; reason: string; now: number; grant?: string | null | undefined }): Promise<DecisionRecord | undefined> {
    const [row] = await this.db
      .insert(approvalDecisions)
      .values({ requestId: d.requestId, approverId: d.approverId, verdict: d.verdict, reason: d.reason, decidedAt: d.now, grant: d.grant ?? null })
      .onConflictDoNothing({ target: [approvalDecisions.requestId, approvalDecisions.approverId] })
      .returning();
    return row && { ...row, withdrawn: false };
  }

  async countApprovals(requestId: string): Promise<number> {
    const [row] = await this.db
      .select({ n: count })
      .from(approvalDecisions)
      .where(and(eq(approvalDecisions.requestId, requestId), eq(approvalDecisions.verdict, 'approve'), this.stillApproves));
    return row!.n;
  }

  async transition(id: string, from: ApprovalStatus, to: ApprovalStatus, fields: TransitionFields = {}): Promise<ApprovalRecord | undefined> {
    const [row] = await this.db
      .update(approvalRequests)
      .set({
        status: to,
        ...(fields.decidedAt !== undefined ? { decidedAt: fields.decidedAt } : {}),
        ...(fields.statusReason !== undefined ? { statusReason: fields.statusReason } : {}),
        ...(fields.executionStatus !== undefined ? { executionStatus: fields.executionStatus } : {}),
      })
      .where(and(eq(approvalRequests.id, id), eq(approvalRequests.status, from)))
      .returning();
    return row;
  }

  async claimExecution(id: string, instanceId: string, now: number): Promise<ApprovalRecord | undefined> {
    const [row] = await this.db
      .update(approvalRequests)
      .set({ executionStatus: 'running', executionInstanceId: instanceId, executionStartedAt: now })
      .where(
        and(
          eq(approvalRequests.id, id),
          eq(approvalRequests.status, 'approved'),
          eq(approvalRequests.executionStatus, 'pending'),
          // A fenced instance claims nothing, even before it has noticed it was declared dead.
          not(exists(this.db.select({ one: sql`1` }).from(instances).where(and(eq(instances.id, instanceId), isNotNull(instances.stoppedAt))))),
        ),
      )
      .returning();
    return row;
  }

  async finishExecution(id: string, o: { status: 'succeeded' | 'failed'; result?: string | null; error?: string | null; now: number }): Promise<ApprovalRecord | undefined> {
    const [row] = await this.db
      .update(approvalRequests)
      .set({ executionStatus: o.status, executionFinishedAt: o.now, result: o.result ?? null, executionError: o.error ?? null })
      .where(and(eq(approvalRequests.id, id), eq(approvalRequests.executionStatus, 'running')))
      .returning();
    return row;
  }

  async endExecution(id: string, c: { from: 'pending' | 'running'; to: 'failed' | 'interrupted'; error: string; now: number }): Promise<ApprovalRecord | undefined> {
    const [row] = await this.db
      .update(approvalRequests)
      .set({ executionStatus: c.to, executionFinishedAt: c.now, executionError: c.error })
      .where(and(eq(approvalRequests.id, id), eq(approvalRequests.executionStatus, c.from)))
      .returning();
    return row;
  }

  async deleteDecidedBefore(cutoff: number, limit = 1000): Promise<number> {
    const doomed = this.db
      .select({ id: approvalRequests.id })
      .from(approvalRequests)
      .where(and(ne(approvalRequests.status, 'pending'), lt(approvalRequests.requestedAt, cutoff), ne(approvalRequests.executionStatus, 'running')))
      .limit(limit);
    const result = await this.db.delete(approvalRequests).where(inArray(approvalRequests.id, doomed));
    return result.count;
  }

  // ---- standing approvals ----------------------------------------------------------------

  async grantById(id: string): Promise<ApprovalGrant | undefined> {
    const [row] = await this.db.select().from(approvalGrants).where(eq(approvalGrants.id, id));
    return row;
  }

  async liveGrantsFor(tool: string, requesterId: string, now: number): Promise<ApprovalGrant[]> {
    return this.db
      .select()
      .from(approvalGrants)
      .where(and(eq(approvalGrants.tool, tool), eq(approvalGrants.requesterId, requesterId), gt(approvalGrants.expiresAt, now), isNull(approvalGrants.revokedAt), liveUses))
      .orderBy(asc(approvalGrants.createdAt));
  }

  async listGrants(filter: { liveAt?: number | undefined; limit: number }): Promise<ApprovalGrant[]> {
    const live = filter.liveAt === undefined ? undefined : and(gt(approvalGrants.expiresAt, filter.liveAt), isNull(approvalGrants.revokedAt), liveUses);
    return this.db.select().from(approvalGrants).where(live).orderBy(desc(approvalGrants.createdAt)).limit(filter.limit);
  }

  async insertGrant(grant: ApprovalGrant): Promise<void> {
    await this.db.insert(approvalGrants).values(grant);
  }

  // A conditional UPDATE: of two calls spending the last use, the second re-reads the row and matches nothing.
  async consumeGrant(id: string, now: number): Promise<ApprovalGrant | undefined> {
    const [row] = await this.db
      .update(approvalGrants)
      .set({ usesLeft: sql`${approvalGrants.usesLeft} - 1`, uses: sql`${approvalGrants.uses} + 1` })
      .where(and(eq(approvalGrants.id, id), gt(approvalGrants.usesLeft, 0), isNull(approvalGrants.revokedAt), gt(approvalGrants.expiresAt, now)))
      .returning();
    return row;
  }

  async revokeGrant(id: string, by: string, reason: string, now: number): Promise<ApprovalGrant | undefined> {
    const [row] = await this.db
      .update(approvalGrants)
      .set({ revokedAt: now, revokedBy: by, revokeReason: reason })
      .where(and(eq(approvalGrants.id, id), isNull(approvalGrants.revokedAt)))
      .returning();
    return row;
  }

  async revokeGrantsOf(userId: string, by: string, reason: string, now: number): Promise<ApprovalGrant[]> {
    const approvedBy = sql`${approvalGrants.approvers}::jsonb ? ${userId}`;
    return this.db
      .update(approvalGrants)
      .set({ revokedAt: now, revokedBy: by, revokeReason: reason })
      .where(and(isNull(approvalGrants.revokedAt), or(eq(approvalGrants.requesterId, userId), approvedBy)))
      .returning();
  }

  // ---- instances ------------------------------------------------------------------------

  async liveInstancesOtherThan(id: string): Promise<InstanceRecord[]> {
    return this.db
      .select()
      .from(instances)
      .where(and(ne(instances.id, id), isNull(instances.stoppedAt)));
  }

  // clock_timestamp(), not now(): the time of this statement, not of its transaction's start.
  async databaseTime(): Promise<number | undefined> {
    const [row] = await this.db.execute<{ ms: string | number }>(sql`select (extract(epoch from clock_timestamp()) * 1000)::bigint as ms`);
    return Number(row!.ms);
  }

  async registerInstance(row: { id: string; hostname: string; pid: number; now: number }): Promise<void> {
    await this.db.insert(instances).values({ id: row.id, hostname: row.hostname, pid: row.pid, startedAt: row.now, heartbeatAt: row.now });
  }

  async heartbeat(id: string, now: number): Promise<InstanceRecord | undefined> {
    const [row] = await this.db
      .update(instances)
      .set({ heartbeatAt: now })
      .where(and(eq(instances.id, id), isNull(instances.stoppedAt)))
      .returning();
    return row;
  }

  async fenceInstance(id: string, seenHeartbeatAt: number, now: number): Promise<InstanceRecord | undefined> {
    const [row] = await this.db
      .update(instances)
      .set({ stoppedAt: now })
      .where(and(eq(instances.id, id), eq(instances.heartbeatAt, seenHeartbeatAt), isNull(instances.stoppedAt)))
      .returning();
    return row;
  }

  async markInstanceStopped(id: string, now: number): Promise<void> {
    await this.db.update(instances).set({ stoppedAt: now }).where(eq(instances.id, id));
  }

  // ---- users and tokens -----------------------------------------------------------------

  async principalByTokenHash(hash: string): Promise<TokenPrincipalRecord | undefined> {
    const [row] = await this.db
      .select({ userId: users.id, role: users.role, active: users.active, tokenId: apiTokens.id, tokenHash: apiTokens.tokenHash })
      .from(apiTokens)
      .innerJoin(users, eq(users.id, apiTokens.userId))
      .where(and(eq(apiTokens.tokenHash, hash), isNull(apiTokens.revokedAt)));
    return row;
  }

  async user(id: string): Promise<UserRecord | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.id, id));
    return row;
  }

  async listUsers() {
    const liveTokens = this.db
      .select({ n: count })
      .from(apiTokens)
      .where(and(eq(apiTokens.userId, users.id), isNull(apiTokens.revokedAt)));
    return this.db
      .select({ id: users.id, role: users.role, active: users.active, createdAt: users.createdAt, tokens: sql<number>`(${liveTokens})`.mapWith(Number) })
      .from(users)
      .orderBy(sql`${users.id} collate "C"`);
  }

  async countUsers(): Promise<number> {
    const [row] = await this.db.select({ n: count }).from(users);
    return row!.n;
  }

  async tokenIds(): Promise<number[]> {
    return (await this.db.select({ id: apiTokens.id }).from(apiTokens)).map((r) => r.id);
  }

  async requesterStanding(userId: string, tokenId: number | null): Promise<{ userActive: boolean | null; tokenLive: boolean | null }> {
    const user = await this.user(userId);
    const [token] = tokenId === null ? [] : await this.db.select({ revokedAt: apiTokens.revokedAt }).from(apiTokens).where(eq(apiTokens.id, tokenId));
    return { userActive: user ? user.active : null, tokenLive: tokenId === null ? null : token !== undefined && token.revokedAt === null };
  }

  async insertUser(row: { id: string; role: string; now: number }): Promise<void> {
    await this.db.insert(users).values({ id: row.id, role: row.role, active: true, createdAt: row.now });
  }

  async setUserActive(id: string, active: boolean, now: number): Promise<UserRecord | undefined> {
    const [row] = await this.db
      .update(users)
      .set({ active, disabledAt: active ? null : now })
      .where(eq(users.id, id))
      .returning();
    return row;
  }

  async insertToken(row: { userId: string; tokenHash: string; prefix: string; now: number }): Promise<number> {
    const [inserted] = await this.db
      .insert(apiTokens)
      .values({ userId: row.userId, tokenHash: row.tokenHash, prefix: row.prefix, createdAt: row.now })
      .returning({ id: apiTokens.id });
    return inserted!.id;
  }

  async revokeTokens(userId: string, now: number): Promise<number[]> {
    const rows = await this.db
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id });
    return rows.map((r) => r.id).sort((a, b) => a - b);
  }

  async sessionBySecretHash(hash: string): Promise<SessionPrincipalRecord | undefined> {
    const [row] = await this.db
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
      .where(and(eq(consoleSessions.secretHash, hash), isNull(consoleSessions.revokedAt)));
    return row;
  }

  async liveSessions(now: number, userId?: string): Promise<SessionRecord[]> {
    const { secretHash: _hash, ...fields } = getTableColumns(consoleSessions);
    return this.db
      .select(fields)
      .from(consoleSessions)
      .where(and(isNull(consoleSessions.revokedAt), gt(consoleSessions.expiresAt, now), userId === undefined ? undefined : eq(consoleSessions.userId, userId)))
      .orderBy(desc(consoleSessions.createdAt), sql`${consoleSessions.id} collate "C"`);
  }

  async insertSession(row: Omit<SessionRecord, 'revokedAt'> & { secretHash: string }): Promise<void> {
    await this.db.insert(consoleSessions).values({ ...row, revokedAt: null });
  }

  async revokeSession(id: string, now: number): Promise<SessionRecord | undefined> {
    const { secretHash: _hash, ...fields } = getTableColumns(consoleSessions);
    const [row] = await this.db
      .update(consoleSessions)
      .set({ revokedAt: now })
      .where(and(eq(consoleSessions.id, id), isNull(consoleSessions.revokedAt)))
      .returning(fields);
    return row;
  }

  async revokeSessionsOf(userId: string, now: number): Promise<string[]> {
    const rows = await this.db
      .update(consoleSessions)
      .set({ revokedAt: now })
      .where(and(eq(consoleSessions.userId, userId), isNull(consoleSessions.revokedAt)))
      .returning({ id: consoleSessions.id });
    return rows.map((r) => r.id);
  }

  async deleteSessionsEndedBefore(cutoff: number): Promise<number> {
    return (await this.db.delete(consoleSessions).where(or(lt(consoleSessions.expiresAt, cutoff), lt(consoleSessions.revokedAt, cutoff)))).count;
  }

  async deleteUsersAndTokens(): Promise<void> {
    await this.db.delete(consoleSessions);
    await this.db.delete(apiTokens);
    await this.db.delete(users);
  }

  // ---- roles, grants, tool policies -----------------------------------------------------

  async roleNames(): Promise<string[]> {
    return (await this.db.select({ name: roles.name }).from(roles).orderBy(sql`${roles.name} collate "C"`)).map((r) => r.name);
  }

  async rolePermissions(): Promise<GrantRecord[]> {
    return this.db.select().from(rolePermissions);
  }

  async toolPolicies(): Promise<ToolPolicyRecord[]> {
    return this.db.select().from(toolPolicies);
  }

  async upsertRole(name: string, description: string, now: number): Promise<void> {
    await this.db.insert(roles).values({ name, description, createdAt: now }).onConflictDoUpdate({ target: roles.name, set: { description } });
  }

  async grant(role: string, permission: string): Promise<void> {
    await this.db.insert(rolePermissions).values({ role, permission }).onConflictDoNothing();
  }

  async upsertToolPolicy(tool: string, sensitivity: Sensitivity, description = ''): Promise<void> {
    await this.db.insert(toolPolicies).values({ tool, sensitivity, description }).onConflictDoUpdate({ target: toolPolicies.tool, set: { sensitivity, description } });
  }

  async deleteGrantsAndPolicies(): Promise<void> {
    await this.db.delete(rolePermissions);
    await this.db.delete(toolPolicies);
  }

  // ---- audit ----------------------------------------------------------------------------

  async lastAudit(): Promise<LogPosition | undefined> {
    const [row] = await this.db.select({ seq: auditEvents.seq, hash: auditEvents.hash }).from(auditEvents).orderBy(desc(auditEvents.seq)).limit(1);
    return row;
  }

  // No lock: the writer alone appends to its chain; the unique (chain, chain_seq) index refuses a fork.
  async insertAudit(record: NewAuditRecord): Promise<number> {
    const [row] = await this.db.insert(auditEvents).values(record).returning({ seq: auditEvents.seq });
    return row!.seq;
  }

  async lockAuditMaintenance(): Promise<void> {
    this.requireTransaction('lockAuditMaintenance');
    await this.db.execute(advisoryLock(LOCKS.auditMaintenance));
  }

  // The chains, found by hopping through the (chain, seq) index from one to the next (a loose index
  // scan PostgreSQL does not do by itself), then each one's newest event.
  async auditChainHeads(): Promise<ChainHead[]> {
    const rows = await this.db.execute<{ chain: string | null; chain_seq: string | number | null; seq: string | number; hash: string }>(sql`
      with recursive chains(name) as (
        select min(chain) from audit_events
        union all
        select (select min(chain) from audit_events where chain > chains.name) from chains where chains.name is not null
      ),
      heads(seq) as (
        select (select max(seq) from audit_events where chain = chains.name) from chains where chains.name is not null
        union all
        select max(seq) from audit_events where chain is null
      )
      select e.chain, e.chain_seq, e.seq, e.hash from audit_events e join heads h on e.seq = h.seq order by e.seq`);
    return rows.map((r) => ({ chain: r.chain, chainSeq: r.chain_seq === null ? null : Number(r.chain_seq), seq: Number(r.seq), hash: r.hash }));
  }

  async lastOfChainBefore(chain: string | null, at: number, belowSeq: number): Promise<ChainHead | undefined> {
    const [row] = await this.db
      .select({ chain: auditEvents.chain, chainSeq: auditEvents.chainSeq, seq: auditEvents.seq, hash: auditEvents.hash })
      .from(auditEvents)
      .where(and(sameChain(chain), lt(auditEvents.at, at), lt(auditEvents.seq, belowSeq)))
      .orderBy(desc(auditEvents.seq))
      .limit(1);
    return row;
  }

  async auditEvent(seq: number): Promise<AuditRecord | undefined> {
    const [row] = await this.db.select().from(auditEvents).where(eq(auditEvents.seq, seq));
    return row;
  }

  async auditPage(filter: AuditFilter): Promise<AuditRecord[]> {
    const where: (SQL | undefined)[] = [];
    if (filter.user) where.push(eq(auditEvents.actor, filter.user));
    if (filter.tool) where.push(eq(auditEvents.tool, filter.tool));
    if (filter.action) where.push(eq(auditEvents.action, filter.action));
    if (filter.requestId) where.push(eq(auditEvents.requestId, filter.requestId));
    if (filter.since !== undefined) where.push(gte(auditEvents.at, filter.since));
    if (filter.beforeSeq !== undefined) {
      const [before] = await this.db.select({ at: auditEvents.at, seq: auditEvents.seq }).from(auditEvents).where(eq(auditEvents.seq, filter.beforeSeq));
      // Events logged before it: earlier in time, or at the same millisecond with a smaller seq.
      where.push(before ? sql`(${auditEvents.at}, ${auditEvents.seq}) < (${before.at}, ${before.seq})` : lt(auditEvents.seq, filter.beforeSeq));
    }
    return this.db
      .select()
      .from(auditEvents)
      .where(and(...where))
      .orderBy(desc(auditEvents.at), desc(auditEvents.seq))
      .limit(filter.limit);
  }

  async auditEventsAfter(seq: number, limit = 1000) {
    return this.db
      .select({ seq: auditEvents.seq, action: auditEvents.action, requestId: auditEvents.requestId, instanceId: auditEvents.instanceId })
      .from(auditEvents)
      .where(gt(auditEvents.seq, seq))
      .orderBy(asc(auditEvents.seq))
      .limit(limit);
  }

  async *auditInOrder(pageSize = 5000, range: AuditRange = {}): AsyncIterable<AuditRecord> {
    let after = range.after ?? -1;
    const through = range.through === undefined || !Number.isFinite(range.through) ? Number.MAX_SAFE_INTEGER : range.through;
    const ofChain = range.chain === undefined ? undefined : sameChain(range.chain);
    for (;;) {
      const page = await this.db
        .select()
        .from(auditEvents)
        .where(and(ofChain, gt(auditEvents.seq, after), lte(auditEvents.seq, through)))
        .orderBy(asc(auditEvents.seq))
        .limit(pageSize);
      if (page.length === 0) return;
      yield* page;
      after = page[page.length - 1]!.seq;
    }
  }

  async deleteChainThrough(chain: string | null, seq: number): Promise<number> {
    return (await this.db.delete(auditEvents).where(and(sameChain(chain), lte(auditEvents.seq, seq)))).count;
  }

  async auditCheckpoints(): Promise<AuditCheckpointRecord[]> {
    return this.db.select().from(auditCheckpoints).orderBy(asc(auditCheckpoints.seq));
  }

  async auditCheckpointsNewestFirst(limit: number): Promise<AuditCheckpointRecord[]> {
    return this.db.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.seq)).limit(limit);
  }

  async insertAuditCheckpoint(record: AuditCheckpointRecord): Promise<AuditCheckpointRecord | undefined> {
    const [row] = await this.db.insert(auditCheckpoints).values(record).onConflictDoNothing().returning();
    return row;
  }

  async deleteAuditCheckpointsBefore(seq: number): Promise<number> {
    return (await this.db.delete(auditCheckpoints).where(lt(auditCheckpoints.seq, seq))).count;
  }

  // ---- rate windows ---------------------------------------------------------------------

  // One statement: the row lock of ON CONFLICT makes instances counting at once add one after another.
  async addToWindow(key: string, windowStart: number, n: number, limit: number): Promise<number | undefined> {
    if (n > limit) return undefined;
    const [row] = await this.db
      .insert(rateWindows)
      .values({ key, windowStart, count: n })
      .onConflictDoUpdate({
        target: [rateWindows.key, rateWindows.windowStart],
        set: { count: sql`${rateWindows.count} + ${n}` },
        setWhere: sql`${rateWindows.count} + ${n} <= ${limit}`,
      })
      .returning({ count: rateWindows.count });
    return row?.count;
  }

  async deleteWindowsBefore(windowStart: number): Promise<number> {
    return (await this.db.delete(rateWindows).where(lt(rateWindows.windowStart, windowStart))).count;
  }

  // ---- meta -----------------------------------------------------------------------------

  // Inside a transaction a fact is read to be changed: its row stays locked until the end, so
  // two transactions updating the same fact apply one after the other (as on SQLite).
  async getMeta(key: string): Promise<string | undefined> {
    const query = this.db.select({ value: meta.value }).from(meta).where(eq(meta.key, key));
    const [row] = this.inTransaction ? await query.for('update') : await query;
    return row?.value;
  }

  async setMeta(key: string, value: string, now: number): Promise<void> {
    await this.db.insert(meta).values({ key, value, updatedAt: now }).onConflictDoUpdate({ target: meta.key, set: { value, updatedAt: now } });
  }

  private requireTransaction(operation: string) {
    if (!this.inTransaction) throw new Error(`${operation} takes a lock: call it inside withTransaction`);
  }
}
