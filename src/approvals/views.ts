import type { Persistence } from '../core/persistence.js';
import { AppError } from '../core/errors.js';
import { APPROVAL_MANAGE, APPROVAL_VIEW, type PolicyService, type Principal } from '../policy/policy.service.js';
import {
  MIN_ID_PREFIX,
  summarizeArguments,
  summarizeView,
  SUMMARY_ARGUMENTS_BYTES,
  toApprovalView,
  type ApprovalSummary,
  type ArgumentsSummary,
  type ApprovalView,
} from './approval.js';
import type { ApprovalRecord, DecisionRecord, HistoryFilter, PendingSummaryRecord } from './approval-store.js';
import type { ReceiptSigner } from '../receipts/receipts.js';

const ID_CHARS = /^[0-9a-f-]{1,36}$/;
/** Summaries of shortened arguments kept (arguments never change, so they never go stale). */
const SUMMARY_CACHE_SIZE = 1000;

/** An undashed prefix longer than 8 characters, dashed as in the UUID (`abcdef0112` → `abcdef01-12`). */
function dashed(prefix: string): string {
  if (prefix.includes('-') || prefix.length <= 8) return prefix;
  return [prefix.slice(0, 8), prefix.slice(8, 12), prefix.slice(12, 16), prefix.slice(16, 20), prefix.slice(20)].filter(Boolean).join('-');
}

export interface ApprovalViewsDeps {
  store: Pick<Persistence, 'approvals'>;
  policy: PolicyService;
  /** Signs the receipts of approved requests; without it (a decider) views carry none. */
  receipts?: ReceiptSigner | undefined;
}

/**
 * Requests as callers, approvers and pushes see them, and who may see them. Reads only: it
 * never changes a request.
 */
export class ApprovalViews {
  private readonly argumentSummaries = new Map<string, ArgumentsSummary>();

  constructor(private readonly deps: ApprovalViewsDeps) {}

  async view(record: ApprovalRecord): Promise<ApprovalView> {
    return this.present(record, await this.deps.store.approvals.decisions(record.id));
  }

  /** The view of a record with its decisions, and its receipt once it is approved. */
  async present(record: ApprovalRecord, decisions: readonly DecisionRecord[], args?: unknown): Promise<ApprovalView> {
    const view = args === undefined ? toApprovalView(record, decisions) : toApprovalView(record, decisions, args);
    const { receipts } = this.deps;
    if (!receipts || record.status !== 'approved' || record.callHash === null || record.policyVersion === null) return view;
    view.receipt = await receipts.issue({
      id: record.id,
      tool: record.tool,
      requesterId: record.requesterId,
      callHash: record.callHash,
      policyVersion: record.policyVersion,
      decidedAt: record.decidedAt ?? record.requestedAt,
      approvers: decisions.filter((d) => d.verdict === 'approve').map((d) => d.approverId),
      grantId: record.grantId,
    });
    return view;
  }

  /** The committed view of a request that exists (it was just read or written). */
  async viewOf(id: string): Promise<ApprovalView> {
    const record = await this.deps.store.approvals.request(id);
    if (!record) throw new AppError('not_found', `approval request ${id} not found`);
    return this.view(record);
  }

  /** Full id or a unique prefix of at least MIN_ID_PREFIX characters (dashes optional): the one rule for every client. */
  async resolveId(ref: string): Promise<string> {
    const normalized = dashed(ref.trim().toLowerCase());
    if (!ID_CHARS.test(normalized)) throw new AppError('not_found', `no approval request matches "${ref.slice(0, 64)}"`);
    if (normalized.replace(/-/g, '').length < MIN_ID_PREFIX) {
      throw new AppError('not_found', `"${normalized}" is too short to find a request: give at least ${MIN_ID_PREFIX} characters of its id (its short id)`);
    }
    const ids = await this.deps.store.approvals.idsWithPrefix(normalized);
    if (ids.length === 0) throw new AppError('not_found', `no approval request matches "${normalized}"`);
    if (ids.length > 1) throw new AppError('ambiguous_id', `"${normalized}" matches more than one request; give more characters`);
    return ids[0]!;
  }

  canView(principal: Principal): boolean {
    return !principal.anonymous && this.deps.policy.hasPermission(principal.role, APPROVAL_VIEW);
  }

  requireApprover(principal: Principal | undefined, permission: typeof APPROVAL_VIEW | typeof APPROVAL_MANAGE): Principal {
    if (!principal || principal.anonymous) throw new AppError('unauthorized', 'an approver token is required');
    if (!this.deps.policy.hasPermission(principal.role, permission)) {
      throw new AppError('permission_denied', `role "${principal.role}" lacks ${permission}`);
    }
    return principal;
  }

  /** A request as its requester or an approver may see it; others are told it does not exist. */
  async get(principal: Principal, ref: string): Promise<ApprovalView> {
    const approval = await this.viewOf(await this.resolveId(ref));
    if (approval.requester.id !== principal.id && !this.canView(principal)) {
      throw new AppError('not_found', `no approval request matches "${ref.slice(0, 64)}"`);
    }
    return approval;
  }

  /** Pending requests as summaries: arguments bounded (SUMMARY_ARGUMENTS_BYTES), so lists stay small. */
  async listPending(limit: number): Promise<ApprovalSummary[]> {
    return this.summaries(await this.deps.store.approvals.listPendingBounded(limit, SUMMARY_ARGUMENTS_BYTES));
  }

  /** Requests of any status, newest first, as summaries (the console's history). */
  async history(filter: HistoryFilter): Promise<ApprovalSummary[]> {
    return this.summaries(await this.deps.store.approvals.history(filter, SUMMARY_ARGUMENTS_BYTES));
  }

  private async summaries(records: PendingSummaryRecord[]): Promise<ApprovalSummary[]> {
    const { approvals } = this.deps.store;
    const byRequest = new Map<string, DecisionRecord[]>();
    for (const d of await approvals.decisionsFor(records.map((r) => r.id))) {
      const list = byRequest.get(d.requestId);
      if (list) list.push(d);
      else byRequest.set(d.requestId, [d]);
    }
    const summaries: ApprovalSummary[] = [];
    for (const { argumentsBytes: _bytes, ...r } of records) {
      // Large arguments were left in the database: summarized once from the full record, then cached.
      let args = this.argumentSummaries.get(r.id);
      if (!args) args = this.remember(r.id, summarizeArguments(r.arguments ?? (await approvals.request(r.id))?.arguments ?? 'null'));
      summaries.push({ ...toApprovalView({ ...r, arguments: '' }, byRequest.get(r.id) ?? [], args.arguments), ...args });
    }
    return summaries;
  }

  /** A full view made into a summary, for push frames. */
  summarize(view: ApprovalView): ApprovalSummary {
    const args = this.argumentSummaries.get(view.id) ?? this.remember(view.id, summarizeArguments(JSON.stringify(view.arguments), view.arguments));
    return summarizeView(view, args);
  }

  /** Summarizes a new request's arguments while they are at hand: lists and pushes then never re-read them. */
  noteArguments(id: string, json: string, parsed: unknown) {
    if (!this.argumentSummaries.has(id)) this.remember(id, summarizeArguments(json, parsed));
  }

  private remember(id: string, made: ArgumentsSummary): ArgumentsSummary {
    // Only shortened ones are worth keeping: they save parsing a large JSON on every list.
    if (made.argumentsTruncated) {
      this.argumentSummaries.set(id, made);
      if (this.argumentSummaries.size > SUMMARY_CACHE_SIZE) this.argumentSummaries.delete(this.argumentSummaries.keys().next().value!);
    }
    return made;
  }

  countPending(): Promise<number> {
    return this.deps.store.approvals.countPending();
  }
}
