import { and, asc, desc, eq, gt, gte, inArray, isNull, lt, lte, ne, sql, type SQL } from 'drizzle-orm';
import type { DatabaseHandle, Db } from './client.js';
import {
  apiTokens,
  approvalDecisions,
  approvalRequests,
  auditEvents,
  instances,
  meta,
  rolePermissions,
  roles,
  toolPolicies,
  users,
} from './schema.js';
import type { ApprovalRow, ApprovalStatus, DecisionRow, ExecutionStatus } from '../approvals/approval.js';

export type AuditRow = typeof auditEvents.$inferSelect;
export type UserRow = typeof users.$inferSelect;
export type InstanceRow = typeof instances.$inferSelect;

export interface AuditFilter {
  limit: number;
  user?: string | undefined;
  tool?: string | undefined;
  action?: string | undefined;
  since?: number | undefined;
  beforeSeq?: number | undefined;
}

/**
 * Every read and write of toolgate's state. Services never see SQL; a PostgreSQL store
 * would implement the same methods. Methods are synchronous (better-sqlite3); `transaction`
 * takes the write lock up front (BEGIN IMMEDIATE) so read-then-write sequences are atomic
 * across processes sharing the file.
 */
export class Store {
  readonly db: Db;
  private readonly prepared;

  constructor(private readonly handle: DatabaseHandle) {
    this.db = handle.db;
    const db = this.db;
    this.prepared = {
      principalByTokenHash: db
        .select({ userId: users.id, role: users.role, active: users.active, tokenHash: apiTokens.tokenHash })
        .from(apiTokens)
        .innerJoin(users, eq(users.id, apiTokens.userId))
        .where(and(eq(apiTokens.tokenHash, sql.placeholder('hash')), isNull(apiTokens.revokedAt)))
        .prepare(),
      userById: db.select().from(users).where(eq(users.id, sql.placeholder('id'))).prepare(),
      lastAudit: db.select({ seq: auditEvents.seq, hash: auditEvents.hash }).from(auditEvents).orderBy(desc(auditEvents.seq)).limit(1).prepare(),
      requestById: db.select().from(approvalRequests).where(eq(approvalRequests.id, sql.placeholder('id'))).prepare(),
      decisionsOf: db
        .select()
        .from(approvalDecisions)
        .where(eq(approvalDecisions.requestId, sql.placeholder('id')))
        .orderBy(asc(approvalDecisions.id))
        .prepare(),
      countPending: db.select({ n: sql<number>`count(*)` }).from(approvalRequests).where(eq(approvalRequests.status, 'pending')).prepare(),
    };
  }

  get sqlite() {
    return this.handle.sqlite;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(() => fn(), { behavior: 'immediate' });
  }

  ping(): boolean {
    return this.handle.sqlite.prepare('select 1 as ok').get() !== undefined;
  }

  // ---- users, roles, tokens -------------------------------------------------------------

  principalByTokenHash(hash: string) {
    return this.prepared.principalByTokenHash.get({ hash });
  }

  user(id: string): UserRow | undefined {
    return this.prepared.userById.get({ id });
  }

  listUsers() {
    return this.db
      .select({
        id: users.id,
        role: users.role,
        active: users.active,
        createdAt: users.createdAt,
        tokens: sql<number>`(select count(*) from api_tokens t where t.user_id = ${users.id} and t.revoked_at is null)`,
      })
      .from(users)
      .orderBy(asc(users.id))
      .all();
  }

  insertUser(row: { id: string; role: string; now: number }) {
    this.db.insert(users).values({ id: row.id, role: row.role, active: true, createdAt: row.now }).run();
  }

  setUserActive(id: string, active: boolean, now: number): boolean {
    const res = this.db
      .update(users)
      .set({ active, disabledAt: active ? null : now })
      .where(eq(users.id, id))
      .run();
    return res.changes > 0;
  }

  insertToken(row: { userId: string; tokenHash: string; prefix: string; now: number }) {
    this.db.insert(apiTokens).values({ userId: row.userId, tokenHash: row.tokenHash, prefix: row.prefix, createdAt: row.now }).run();
  }

  revokeTokens(userId: string, now: number): number {
    return this.db
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .run().changes;
  }

  roleNames(): string[] {
    return this.db.select({ name: roles.name }).from(roles).orderBy(asc(roles.name)).all().map((r) => r.name);
  }

  upsertRole(name: string, description: string, now: number) {
    this.db.insert(roles).values({ name, description, createdAt: now }).onConflictDoUpdate({ target: roles.name, set: { description } }).run();
  }

  grant(role: string, permission: string) {
    this.db.insert(rolePermissions).values({ role, permission }).onConflictDoNothing().run();
  }

  rolePermissions() {
    return this.db.select().from(rolePermissions).all();
  }

  upsertToolPolicy(tool: string, sensitivity: ApprovalRow['sensitivity'], description = '') {
    this.db
      .insert(toolPolicies)
      .values({ tool, sensitivity, description })
      .onConflictDoUpdate({ target: toolPolicies.tool, set: { sensitivity, description } })
      .run();
  }

  toolPolicies() {
    return this.db.select().from(toolPolicies).all();
  }

  /** Removes users, tokens, grants and policies (not requests or the audit log) before a reseed. */
  clearIdentityAndPolicy() {
    this.db.delete(apiTokens).run();
    this.db.delete(users).run();
    this.db.delete(rolePermissions).run();
    this.db.delete(toolPolicies).run();
  }

  countUsers(): number {
    return this.db.select({ n: sql<number>`count(*)` }).from(users).get()?.n ?? 0;
  }

  // ---- approval requests ----------------------------------------------------------------

  countPending(): number {
    return this.prepared.countPending.get()?.n ?? 0;
  }

  insertRequest(row: typeof approvalRequests.$inferInsert) {
    this.db.insert(approvalRequests).values(row).run();
  }

  request(id: string): ApprovalRow | undefined {
    return this.prepared.requestById.get({ id });
  }

  decisions(requestId: string): DecisionRow[] {
    return this.prepared.decisionsOf.all({ id: requestId });
  }

  /** Ids starting with `prefix` (lower-case hex and dashes only), at most `limit`. Uses the primary key. */
  idsWithPrefix(prefix: string, limit = 2): string[] {
    // Every id character sorts below 'g', so [prefix, prefix+'g') is exactly the ids that start with it.
    return this.db
      .select({ id: approvalRequests.id })
      .from(approvalRequests)
      .where(and(gte(approvalRequests.id, prefix), lt(approvalRequests.id, `${prefix}g`)))
      .limit(limit)
      .all()
      .map((r) => r.id);
  }

  listPending(limit: number): ApprovalRow[] {
    return this.db
      .select()
      .from(approvalRequests)
      .where(eq(approvalRequests.status, 'pending'))
      .orderBy(asc(approvalRequests.requestedAt), asc(approvalRequests.id))
      .limit(limit)
      .all();
  }

  decisionsFor(requestIds: string[]): DecisionRow[] {
    if (requestIds.length === 0) return [];
    const out: DecisionRow[] = [];
    for (let i = 0; i < requestIds.length; i += 500) {
      out.push(
        ...this.db
          .select()
          .from(approvalDecisions)
          .where(inArray(approvalDecisions.requestId, requestIds.slice(i, i + 500)))
          .orderBy(asc(approvalDecisions.id))
          .all(),
      );
    }
    return out;
  }

  /** The state machine's one move: changes the status only if it still is `from`. */
  transition(
    id: string,
    from: ApprovalStatus,
    to: ApprovalStatus,
    fields: { decidedAt?: number | null; statusReason?: string | null; executionStatus?: ExecutionStatus } = {},
  ): boolean {
    return (
      this.db
        .update(approvalRequests)
        .set({ status: to, ...fields })
        .where(and(eq(approvalRequests.id, id), eq(approvalRequests.status, from)))
        .run().changes === 1
    );
  }

  insertDecision(row: { requestId: string; approverId: string; verdict: 'approve' | 'reject'; reason: string; now: number }) {
    this.db
      .insert(approvalDecisions)
      .values({ requestId: row.requestId, approverId: row.approverId, verdict: row.verdict, reason: row.reason, decidedAt: row.now })
      .run();
  }

  countApprovals(requestId: string): number {
    return (
      this.db
        .select({ n: sql<number>`count(*)` })
        .from(approvalDecisions)
        .where(and(eq(approvalDecisions.requestId, requestId), eq(approvalDecisions.verdict, 'approve')))
        .get()?.n ?? 0
    );
  }

  /** Claims an approved request's execution for one instance: at most one caller ever gets true. */
  claimExecution(id: string, instanceId: string, now: number): boolean {
    return (
      this.db
        .update(approvalRequests)
        .set({ executionStatus: 'running', executionInstanceId: instanceId, executionStartedAt: now })
        .where(and(eq(approvalRequests.id, id), eq(approvalRequests.status, 'approved'), eq(approvalRequests.executionStatus, 'pending')))
        .run().changes === 1
    );
  }

  finishExecution(id: string, outcome: { status: 'succeeded' | 'failed'; result?: string | null; error?: string | null; now: number }): boolean {
    return (
      this.db
        .update(approvalRequests)
        .set({
          executionStatus: outcome.status,
          executionFinishedAt: outcome.now,
          result: outcome.result ?? null,
          executionError: outcome.error ?? null,
        })
        .where(and(eq(approvalRequests.id, id), eq(approvalRequests.executionStatus, 'running')))
        .run().changes === 1
    );
  }

  /** Marks an approved request whose execution never started as failed (its caller is gone). */
  abandonExecution(id: string, error: string, now: number): boolean {
    return (
      this.db
        .update(approvalRequests)
        .set({ executionStatus: 'failed', executionFinishedAt: now, executionError: error })
        .where(and(eq(approvalRequests.id, id), eq(approvalRequests.executionStatus, 'pending')))
        .run().changes === 1
    );
  }

  pendingDueBy(now: number, limit = 1000): ApprovalRow[] {
    return this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.status, 'pending'), lte(approvalRequests.expiresAt, now)))
      .limit(limit)
      .all();
  }

  approvedAsyncAwaitingExecution(limit = 100): ApprovalRow[] {
    return this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.executionStatus, 'pending'), eq(approvalRequests.status, 'approved'), eq(approvalRequests.mode, 'async')))
      .limit(limit)
      .all();
  }

  /** Rows a dead instance left behind: its pending `wait` requests and its running or unclaimed executions. */
  orphansOf(instanceId: string) {
    const pendingWaits = this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.instanceId, instanceId), eq(approvalRequests.status, 'pending'), eq(approvalRequests.mode, 'wait')))
      .all();
    const unclaimedWaits = this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.instanceId, instanceId), eq(approvalRequests.executionStatus, 'pending'), eq(approvalRequests.mode, 'wait')))
      .all();
    const running = this.db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.executionInstanceId, instanceId), eq(approvalRequests.executionStatus, 'running')))
      .all();
    return { pendingWaits, unclaimedWaits, running };
  }

  /** Force-fails a running execution of a dead instance. */
  failRunning(id: string, error: string, now: number): boolean {
    return (
      this.db
        .update(approvalRequests)
        .set({ executionStatus: 'failed', executionFinishedAt: now, executionError: error })
        .where(and(eq(approvalRequests.id, id), eq(approvalRequests.executionStatus, 'running')))
        .run().changes === 1
    );
  }

  deleteDecidedBefore(cutoff: number, limit = 1000): number {
    const ids = this.db
      .select({ id: approvalRequests.id })
      .from(approvalRequests)
      .where(and(ne(approvalRequests.status, 'pending'), lt(approvalRequests.requestedAt, cutoff), ne(approvalRequests.executionStatus, 'running')))
      .limit(limit)
      .all()
      .map((r) => r.id);
    if (ids.length === 0) return 0;
    return this.db.delete(approvalRequests).where(inArray(approvalRequests.id, ids)).run().changes;
  }

  countByStatus(): Record<string, number> {
    const rows = this.db
      .select({ status: approvalRequests.status, n: sql<number>`count(*)` })
      .from(approvalRequests)
      .groupBy(approvalRequests.status)
      .all();
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  // ---- instances ------------------------------------------------------------------------

  registerInstance(row: { id: string; hostname: string; pid: number; now: number }) {
    this.db
      .insert(instances)
      .values({ id: row.id, hostname: row.hostname, pid: row.pid, startedAt: row.now, heartbeatAt: row.now })
      .run();
  }

  heartbeat(id: string, now: number) {
    this.db.update(instances).set({ heartbeatAt: now }).where(eq(instances.id, id)).run();
  }

  markInstanceStopped(id: string, now: number) {
    this.db.update(instances).set({ stoppedAt: now }).where(eq(instances.id, id)).run();
  }

  liveInstancesOtherThan(id: string): InstanceRow[] {
    return this.db
      .select()
      .from(instances)
      .where(and(ne(instances.id, id), isNull(instances.stoppedAt)))
      .all();
  }

  // ---- audit ----------------------------------------------------------------------------

  lastAudit(): { seq: number; hash: string } | undefined {
    return this.prepared.lastAudit.get();
  }

  insertAudit(row: typeof auditEvents.$inferInsert) {
    this.db.insert(auditEvents).values(row).run();
  }

  auditPage(filter: AuditFilter): AuditRow[] {
    const where: SQL[] = [];
    if (filter.user) where.push(eq(auditEvents.actor, filter.user));
    if (filter.tool) where.push(eq(auditEvents.tool, filter.tool));
    if (filter.action) where.push(eq(auditEvents.action, filter.action));
    if (filter.since !== undefined) where.push(gte(auditEvents.at, filter.since));
    if (filter.beforeSeq !== undefined) where.push(lt(auditEvents.seq, filter.beforeSeq));
    return this.db
      .select()
      .from(auditEvents)
      .where(where.length ? and(...where) : undefined)
      .orderBy(desc(auditEvents.seq))
      .limit(filter.limit)
      .all();
  }

  /** Events written after `seq` by other processes, for the polling fallback. */
  auditEventsAfter(seq: number, excludeInstance: string, limit = 1000) {
    return this.db
      .select({ seq: auditEvents.seq, action: auditEvents.action, requestId: auditEvents.requestId, instanceId: auditEvents.instanceId })
      .from(auditEvents)
      .where(gt(auditEvents.seq, seq))
      .orderBy(asc(auditEvents.seq))
      .limit(limit)
      .all()
      .filter((e) => e.instanceId !== excludeInstance);
  }

  /** Walks the whole log in sequence order, a page at a time. */
  *auditInOrder(pageSize = 5000): Generator<AuditRow> {
    let after = -1;
    for (;;) {
      const page = this.db.select().from(auditEvents).where(gt(auditEvents.seq, after)).orderBy(asc(auditEvents.seq)).limit(pageSize).all();
      if (page.length === 0) return;
      yield* page;
      after = page[page.length - 1]!.seq;
    }
  }

  deleteAuditThrough(seq: number): number {
    return this.db.delete(auditEvents).where(lte(auditEvents.seq, seq)).run().changes;
  }

  lastAuditBefore(at: number): { seq: number; hash: string } | undefined {
    return this.db
      .select({ seq: auditEvents.seq, hash: auditEvents.hash })
      .from(auditEvents)
      .where(lt(auditEvents.at, at))
      .orderBy(desc(auditEvents.seq))
      .limit(1)
      .get();
  }

  // ---- meta -----------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    return this.db.select({ value: meta.value }).from(meta).where(eq(meta.key, key)).get()?.value;
  }

  setMeta(key: string, value: string, now: number) {
    this.db.insert(meta).values({ key, value, updatedAt: now }).onConflictDoUpdate({ target: meta.key, set: { value, updatedAt: now } }).run();
  }
}
