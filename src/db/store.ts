import { and, asc, desc, eq, getTableColumns, getTableName, gt, gte, inArray, isNull, is, lt, lte, ne, sql, SQL, type Table } from 'drizzle-orm';
import type { Statement } from 'better-sqlite3';
import type { DatabaseHandle, Db } from './client.js';
import {
  apiTokens,
  approvalDecisions,
  approvalRequests,
  auditCheckpoints,
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
export type AuditCheckpointRow = typeof auditCheckpoints.$inferSelect;
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

/** `"column" as "key", ...` for every column of `table`, so a raw statement returns the rows Drizzle would. */
function selectList(table: Table): string {
  return Object.entries(getTableColumns(table))
    .map(([key, column]) => `"${column.name}" as "${key}"`)
    .join(', ');
}

/**
 * A prepared INSERT of every column of `table`; a value left undefined gets the column's default
 * (or NULL), as Drizzle's insert would give it.
 */
function preparedInsert<Row extends Record<string, unknown>>(sqlite: DatabaseHandle['sqlite'], table: Table): (row: Row) => void {
  const columns = Object.entries(getTableColumns(table));
  const stmt = sqlite.prepare(
    `insert into "${getTableName(table)}" (${columns.map(([, c]) => `"${c.name}"`).join(', ')}) values (${columns.map(([key]) => `@${key}`).join(', ')})`,
  );
  return (row) => {
    const params: Record<string, unknown> = {};
    for (const [key, column] of columns) {
      const value = row[key] !== undefined ? row[key] : column.hasDefault && !is(column.default, SQL) ? column.default : undefined;
      params[key] = value === undefined || value === null ? null : column.mapToDriverValue(value);
    }
    stmt.run(params);
  };
}

/** Raw columns of a request transition, by the field names `transition` takes. */
const TRANSITION_COLUMNS: Record<string, string> = { decidedAt: 'decided_at', statusReason: 'status_reason', executionStatus: 'execution_status' };

/**
 * Every read and write of toolgate's state. Services never see SQL; a PostgreSQL store
 * would implement the same methods. Methods are synchronous (better-sqlite3); `transaction`
 * takes the write lock up front (BEGIN IMMEDIATE) so read-then-write sequences are atomic
 * across processes sharing the file.
 */
export class Store {
  readonly db: Db;
  private readonly prepared;
  /**
   * The statements on the hot paths (the gate, a request's lifecycle, the audit append), prepared
   * once as plain SQLite statements: building and preparing a Drizzle query per call cost more than
   * running it. Their rows have the same shape as Drizzle's.
   */
  private readonly hot;
  private readonly transitions = new Map<string, Statement>();
  private readonly inImmediateTransaction: { immediate(fn: () => unknown): unknown };

  constructor(private readonly handle: DatabaseHandle) {
    this.db = handle.db;
    const db = this.db;
    this.prepared = {
      userById: db.select().from(users).where(eq(users.id, sql.placeholder('id'))).prepare(),
    };
    const raw = handle.sqlite;
    const requestColumns = selectList(approvalRequests);
    // `withdrawn`: the approver is no longer active or their role lost approval.manage (their approval stops counting).
    const decisionColumns = `${selectList(approvalDecisions)}, not exists (select 1 from users u join role_permissions p on p.role = u.role and p.permission = 'approval.manage'
        where u.id = approver_id and u.active = 1) as "withdrawn"`;
    this.hot = {
      principalByTokenHash: raw.prepare(
        `select u.id as userId, u.role as role, u.active as active, t.id as tokenId, t.token_hash as tokenHash
           from api_tokens t join users u on u.id = t.user_id
          where t.token_hash = ? and t.revoked_at is null`,
      ),
      lastAudit: raw.prepare('select seq, hash from audit_events order by seq desc limit 1'),
      insertAudit: preparedInsert<typeof auditEvents.$inferInsert>(raw, auditEvents),
      insertRequest: preparedInsert<typeof approvalRequests.$inferInsert>(raw, approvalRequests),
      requestById: raw.prepare(`select ${requestColumns} from approval_requests where id = ?`),
      decisionsOf: raw.prepare(`select ${decisionColumns} from approval_decisions where request_id = ? order by id`),
      decisionsFor: raw.prepare(`select ${decisionColumns} from approval_decisions where request_id in (select value from json_each(?)) order by id`),
      idsWithPrefix: raw.prepare('select id from approval_requests where id >= ? and id < ? limit ?').pluck(),
      listPending: raw.prepare(`select ${requestColumns} from approval_requests where status = 'pending' order by requested_at, id limit ?`),
      // Large arguments stay in the database: a list of summaries needs only their size, which
      // octet_length reads from the record header without loading the value (length() would load it).
      listPendingBounded: raw.prepare(
        `select ${requestColumns.replace('"arguments" as "arguments"', `case when octet_length("arguments") <= ? then "arguments" end as "arguments"`)},
                octet_length("arguments") as "argumentsBytes"
           from approval_requests where status = 'pending' order by requested_at, id limit ?`,
      ),
      countPending: raw.prepare(`select count(*) from approval_requests where status = 'pending'`).pluck(),
      pendingUpTo: raw.prepare(`select count(*) from (select 1 from approval_requests where status = 'pending' limit ?)`).pluck(),
      // Through the status index: pending rows are few (the global cap), so no index on the requester is needed.
      pendingOfRequesterUpTo: raw.prepare(
        `select count(*) from (select 1 from approval_requests where status = 'pending' and requester_id = ? limit ?)`,
      ).pluck(),
      insertDecision: raw.prepare('insert into approval_decisions (request_id, approver_id, verdict, reason, decided_at) values (?, ?, ?, ?, ?)'),
      // Only approvers who still may approve count: a disabled or demoted approver's vote stops counting.
      countApprovals: raw.prepare(
        `select count(*) from approval_decisions d join users u on u.id = d.approver_id
          where d.request_id = ? and d.verdict = 'approve' and u.active = 1
            and exists (select 1 from role_permissions p where p.role = u.role and p.permission = 'approval.manage')`,
      ).pluck(),
      requesterStanding: raw.prepare(
        `select (select active from users where id = @userId) as userActive,
                (select revoked_at is null from api_tokens where id = @tokenId) as tokenLive`,
      ),
      claimExecution: raw.prepare(
        `update approval_requests set execution_status = 'running', execution_instance_id = ?, execution_started_at = ?
          where id = ? and status = 'approved' and execution_status = 'pending'`,
      ),
      finishExecution: raw.prepare(
        `update approval_requests set execution_status = ?, execution_finished_at = ?, result = ?, execution_error = ?
          where id = ? and execution_status = 'running'`,
      ),
      auditEventsAfter: raw.prepare('select seq, action, request_id as requestId, instance_id as instanceId from audit_events where seq > ? order by seq limit ?'),
    };
    // One transaction function for the life of the store; better-sqlite3 nests it as a savepoint.
    this.inImmediateTransaction = raw.transaction((fn: () => unknown) => fn());
  }

  get sqlite() {
    return this.handle.sqlite;
  }

  transaction<T>(fn: () => T): T {
    return this.inImmediateTransaction.immediate(fn) as T;
  }

  ping(): boolean {
    return this.handle.sqlite.prepare('select 1 as ok').get() !== undefined;
  }

  // ---- users, roles, tokens -------------------------------------------------------------

  principalByTokenHash(hash: string): { userId: string; role: string; active: boolean; tokenId: number; tokenHash: string } | undefined {
    const row = this.hot.principalByTokenHash.get(hash) as { userId: string; role: string; active: number; tokenId: number; tokenHash: string } | undefined;
    return row && { ...row, active: row.active === 1 };
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
        // Spelled out: drizzle renders ${users.id} as a bare "id", which the subquery binds to api_tokens.id.
        tokens: sql<number>`(select count(*) from api_tokens t where t.user_id = "users"."id" and t.revoked_at is null)`,
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

  /** Stores a token's hash; returns the token's id. */
  insertToken(row: { userId: string; tokenHash: string; prefix: string; now: number }): number {
    return Number(this.db.insert(apiTokens).values({ userId: row.userId, tokenHash: row.tokenHash, prefix: row.prefix, createdAt: row.now }).run().lastInsertRowid);
  }

  /** Revokes a user's live tokens; returns the ids of those it revoked. */
  revokeTokens(userId: string, now: number): number[] {
    return this.db
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id })
      .all()
      .map((r) => r.id);
  }

  /** Ids of every token, live or revoked (a reseed deletes them all). */
  tokenIds(): number[] {
    return this.db.select({ id: apiTokens.id }).from(apiTokens).all().map((r) => r.id);
  }

  /**
   * Whether the requester of a request still holds the power that made it: the user's `active`
   * flag (null when the user no longer exists) and whether its token is live (null without a token).
   */
  requesterStanding(userId: string, tokenId: number | null): { userActive: boolean | null; tokenLive: boolean | null } {
    const row = this.hot.requesterStanding.get({ userId, tokenId }) as { userActive: number | null; tokenLive: number | null };
    return { userActive: row.userActive === null ? null : row.userActive === 1, tokenLive: tokenId === null ? null : row.tokenLive === 1 };
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
    return this.hot.countPending.get() as number;
  }

  /** The number of pending requests, counted up to `limit` only: `pendingUpTo(max) >= max` is the pending limit's test at any backlog. */
  pendingUpTo(limit: number): number {
    return this.hot.pendingUpTo.get(limit) as number;
  }

  /** The same count for one requester's pending requests (the per-requester cap). */
  pendingOfRequesterUpTo(requesterId: string, limit: number): number {
    return this.hot.pendingOfRequesterUpTo.get(requesterId, limit) as number;
  }

  insertRequest(row: typeof approvalRequests.$inferInsert) {
    this.hot.insertRequest(row);
  }

  request(id: string): ApprovalRow | undefined {
    return this.hot.requestById.get(id) as ApprovalRow | undefined;
  }

  decisions(requestId: string): DecisionRow[] {
    return this.hot.decisionsOf.all(requestId) as DecisionRow[];
  }

  /** Ids starting with `prefix` (lower-case hex and dashes only), at most `limit`. Uses the primary key. */
  idsWithPrefix(prefix: string, limit = 2): string[] {
    // Every id character sorts below 'g', so [prefix, prefix+'g') is exactly the ids that start with it.
    return this.hot.idsWithPrefix.all(prefix, `${prefix}g`, limit) as string[];
  }

  listPending(limit: number): ApprovalRow[] {
    return this.hot.listPending.all(limit) as ApprovalRow[];
  }

  /** Pending requests, oldest first, with `arguments` null when their JSON is over `maxArgumentBytes`. */
  listPendingBounded(limit: number, maxArgumentBytes: number): (Omit<ApprovalRow, 'arguments'> & { arguments: string | null; argumentsBytes: number })[] {
    return this.hot.listPendingBounded.all(maxArgumentBytes, limit) as (Omit<ApprovalRow, 'arguments'> & { arguments: string | null; argumentsBytes: number })[];
  }

  decisionsFor(requestIds: string[]): DecisionRow[] {
    if (requestIds.length === 0) return [];
    const out: DecisionRow[] = [];
    for (let i = 0; i < requestIds.length; i += 500) {
      out.push(...(this.hot.decisionsFor.all(JSON.stringify(requestIds.slice(i, i + 500))) as DecisionRow[]));
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
    // Like Drizzle's `set`, fields left undefined are not written; one prepared statement per set of fields.
    const keys = Object.keys(fields).filter((k) => fields[k as keyof typeof fields] !== undefined);
    if (keys.some((k) => !(k in TRANSITION_COLUMNS))) {
      return (
        this.db
          .update(approvalRequests)
          .set({ status: to, ...fields })
          .where(and(eq(approvalRequests.id, id), eq(approvalRequests.status, from)))
          .run().changes === 1
      );
    }
    const shape = keys.join(',');
    let stmt = this.transitions.get(shape);
    if (!stmt) {
      const set = ['status = @to', ...keys.map((k) => `${TRANSITION_COLUMNS[k]} = @${k}`)].join(', ');
      stmt = this.handle.sqlite.prepare(`update approval_requests set ${set} where id = @id and status = @from`);
      this.transitions.set(shape, stmt);
    }
    return stmt.run({ ...fields, id, from, to }).changes === 1;
  }

  insertDecision(row: { requestId: string; approverId: string; verdict: 'approve' | 'reject'; reason: string; now: number }) {
    this.hot.insertDecision.run(row.requestId, row.approverId, row.verdict, row.reason, row.now);
  }

  countApprovals(requestId: string): number {
    return this.hot.countApprovals.get(requestId) as number;
  }

  /** Claims an approved request's execution for one instance: at most one caller ever gets true. */
  claimExecution(id: string, instanceId: string, now: number): boolean {
    return this.hot.claimExecution.run(instanceId, now, id).changes === 1;
  }

  finishExecution(id: string, outcome: { status: 'succeeded' | 'failed'; result?: string | null; error?: string | null; now: number }): boolean {
    return this.hot.finishExecution.run(outcome.status, outcome.now, outcome.result ?? null, outcome.error ?? null, id).changes === 1;
  }

  /**
   * Ends an execution that will not finish normally, if it is still `from`: an approved request
   * whose run never started (`pending` → `failed`: its caller is gone, or its requester lost
   * power), a run claimed here whose tool never started (`running` → `failed`), or a run whose
   * instance is gone (`running` → `interrupted`: it may or may not have run; never retried).
   */
  endExecution(id: string, change: { from: 'pending' | 'running'; to: 'failed' | 'interrupted'; error: string; now: number }): boolean {
    return (
      this.db
        .update(approvalRequests)
        .set({ executionStatus: change.to, executionFinishedAt: change.now, executionError: change.error })
        .where(and(eq(approvalRequests.id, id), eq(approvalRequests.executionStatus, change.from)))
        .run().changes === 1
    );
  }

  /** Pending requests made by a user, or with any of the given tokens. */
  pendingOf(filter: { requesterId: string } | { tokenIds: number[] }): ApprovalRow[] {
    const where =
      'requesterId' in filter
        ? eq(approvalRequests.requesterId, filter.requesterId)
        : filter.tokenIds.length > 0
          ? inArray(approvalRequests.tokenId, filter.tokenIds)
          : sql`0`;
    return this.db.select().from(approvalRequests).where(and(eq(approvalRequests.status, 'pending'), where)).all();
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

  /** False when the instance's row is marked stopped: a peer declared it dead (it is fenced off). */
  heartbeat(id: string, now: number): boolean {
    return this.db.update(instances).set({ heartbeatAt: now }).where(and(eq(instances.id, id), isNull(instances.stoppedAt))).run().changes === 1;
  }

  /**
   * Declares a silent instance dead: marks it stopped only if its heartbeat is still the one the
   * caller judged stale (and nobody else fenced it first). True for exactly one caller.
   */
  fenceInstance(id: string, seenHeartbeatAt: number, now: number): boolean {
    return (
      this.db
        .update(instances)
        .set({ stoppedAt: now })
        .where(and(eq(instances.id, id), eq(instances.heartbeatAt, seenHeartbeatAt), isNull(instances.stoppedAt)))
        .run().changes === 1
    );
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
    return this.hot.lastAudit.get() as { seq: number; hash: string } | undefined;
  }

  insertAudit(row: typeof auditEvents.$inferInsert) {
    this.hot.insertAudit(row);
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
    const rows = this.hot.auditEventsAfter.all(seq, limit) as { seq: number; action: string; requestId: string | null; instanceId: string }[];
    return rows.filter((e) => e.instanceId !== excludeInstance);
  }

  /** Walks the log in sequence order after `range.after` through `range.through` (the whole log by default), a page at a time. */
  *auditInOrder(pageSize = 5000, range: { after?: number; through?: number } = {}): Generator<AuditRow> {
    let after = range.after ?? -1;
    const upTo = range.through === undefined || !Number.isFinite(range.through) ? undefined : lte(auditEvents.seq, range.through);
    for (;;) {
      const page = this.db
        .select()
        .from(auditEvents)
        .where(and(gt(auditEvents.seq, after), upTo))
        .orderBy(asc(auditEvents.seq))
        .limit(pageSize)
        .all();
      if (page.length === 0) return;
      yield* page;
      after = page[page.length - 1]!.seq;
    }
  }

  auditEvent(seq: number): AuditRow | undefined {
    return this.db.select().from(auditEvents).where(eq(auditEvents.seq, seq)).get();
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

  // ---- audit checkpoints ----------------------------------------------------------------

  /** False when a checkpoint of that event already exists (another instance signed it first). */
  insertAuditCheckpoint(row: AuditCheckpointRow): boolean {
    return this.db.insert(auditCheckpoints).values(row).onConflictDoNothing().run().changes > 0;
  }

  auditCheckpoints(): AuditCheckpointRow[] {
    return this.db.select().from(auditCheckpoints).orderBy(asc(auditCheckpoints.seq)).all();
  }

  auditCheckpointsNewestFirst(limit: number): AuditCheckpointRow[] {
    return this.db.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.seq)).limit(limit).all();
  }

  deleteAuditCheckpointsBefore(seq: number): number {
    return this.db.delete(auditCheckpoints).where(lt(auditCheckpoints.seq, seq)).run().changes;
  }

  // ---- meta -----------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    return this.db.select({ value: meta.value }).from(meta).where(eq(meta.key, key)).get()?.value;
  }

  setMeta(key: string, value: string, now: number) {
    this.db.insert(meta).values({ key, value, updatedAt: now }).onConflictDoUpdate({ target: meta.key, set: { value, updatedAt: now } }).run();
  }
}
