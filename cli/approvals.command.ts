import type { Command } from 'commander';
import type { ApprovalSummary, ApprovalView } from '../src/approvals/approval.js';
import { GatewayClient, serverFrom, tokenFrom } from './client.js';
import { approvalDetails, approvalLine, colours, plain, safeJson, safeText, term, type TerminalText } from './format.js';
import type { GrantView } from '../src/approvals/approval.schemas.js';
import type { GrantRequest } from '../src/approvals/grants.js';
import { addMatch, broadened, grantPreview } from './grant-flags.js';

function clientOf(cmd: Command) {
  const opts = cmd.optsWithGlobals<{ server?: string; token?: string }>();
  return new GatewayClient(serverFrom(opts), tokenFrom(opts));
}

/** stdout takes only TerminalText (escaped data) or escaped JSON. */
const out = (text: TerminalText) => void process.stdout.write(`${text.text}\n`);

export function approvalsCommand(program: Command) {
  const approvals = program.command('approvals').description('one-shot approval commands over HTTP');
  const paint = () => (process.stdout.isTTY ? colours : plain);

  approvals
    .command('list')
    .description('pending requests, oldest first')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; json?: boolean }, cmd: Command) => {
      const res = await clientOf(cmd).request<{ pending_approvals: ApprovalSummary[] }>('GET', `/api/approvals/pending?limit=${encodeURIComponent(opts.limit)}`);
      if (opts.json) return void process.stdout.write(`${safeJson(res.pending_approvals, 2)}\n`);
      if (res.pending_approvals.length === 0) out(term`no pending requests`);
      for (const a of res.pending_approvals) out(approvalLine(a, paint()));
    });

  approvals
    .command('show <id>')
    .description('one request, by id or short id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const res = await clientOf(cmd).request<{ approval: ApprovalView }>('GET', `/api/approvals/${encodeURIComponent(id)}`);
      if (opts.json) return void process.stdout.write(`${safeJson(res.approval, 2)}\n`);
      out(approvalDetails(res.approval, paint()));
    });

  approvals
    .command('approve <id> <reason...>')
    .description('approve a pending request, with a reason; optionally allow the same call again (a standing approval)')
    .option('--for <duration>', 'standing approval: allow the same call again for this long (90s, 15m, 2h)')
    .option('--times <n>', 'standing approval: at most this many more calls')
    .option('--match <key=pattern>', 'broaden: this argument may be value, prefix/** or a glob (repeatable); the others must stay equal', collect, [])
    .option('--any-args', 'broaden: any arguments of the tool')
    .option('--yes', 'confirm a broadened standing approval without being asked')
    .action(async (id: string, reason: string[], opts: { for?: string; times?: string; match: string[]; anyArgs?: boolean; yes?: boolean }, cmd: Command) => {
      const grant: GrantRequest = {};
      if (opts.for !== undefined) grant.for = opts.for;
      if (opts.times !== undefined) grant.times = Number(opts.times);
      for (const pair of opts.match) addMatch(grant, pair);
      if (opts.anyArgs) grant.anyArgs = true;
      const asked = Object.keys(grant).length > 0;
      if (asked) {
        const preview = grantPreview(grant);
        process.stderr.write(`${safeText(preview)}\n`);
        if (broadened(grant) && !opts.yes) throw new Error('this standing approval is broader than the exact arguments: re-run with --yes to confirm it');
      }
      const res = await clientOf(cmd).request<{ approval: ApprovalView; grant: GrantView | null }>('POST', `/api/approvals/${encodeURIComponent(id)}/approve`, {
        reason: reason.join(' '),
        ...(asked ? { grant } : {}),
      });
      out(term`${res.approval.shortId} ${res.approval.status}`);
      if (res.grant) out(term`granted ${res.grant.id} until ${res.grant.expiresAt}, ${String(res.grant.usesLeft ?? 'unlimited')} calls: ${res.grant.scopeText}`);
      else if (asked) out(term`no standing approval made yet${res.approval.status === 'pending' ? ' (the quorum is not reached; every approver must ask for one)' : ''}`);
    });

  approvals
    .command('reject <id> <reason...>')
    .description('reject a pending request, with a reason')
    .action(async (id: string, reason: string[], _opts: unknown, cmd: Command) => {
      const res = await clientOf(cmd).request<{ approval: ApprovalView }>('POST', `/api/approvals/${encodeURIComponent(id)}/reject`, { reason: reason.join(' ') });
      out(term`${res.approval.shortId} ${res.approval.status}`);
    });

  const grants = program.command('grants').description('standing approvals over HTTP');
  grants
    .command('list')
    .description('live standing approvals, newest first')
    .option('--all', 'revoked, expired and used-up ones too')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; json?: boolean }, cmd: Command) => {
      const res = await clientOf(cmd).request<{ grants: GrantView[] }>('GET', `/api/grants${opts.all ? '?all=true' : ''}`);
      if (opts.json) return void process.stdout.write(`${safeJson(res.grants, 2)}\n`);
      if (res.grants.length === 0) out(term`no standing approvals`);
      for (const g of res.grants) {
        out(term`${g.id.slice(0, 8)}  ${g.state}  ${g.tool}  for ${g.requester}  until ${g.expiresAt}  ${String(g.usesLeft ?? 'unlimited')} left (${String(g.uses)} used)  by ${g.approvers.join(',')}  ${g.scopeText}`);
      }
    });
  grants
    .command('revoke <id> <reason...>')
    .description('revoke a standing approval at once (id: full, or 8+ characters)')
    .action(async (id: string, reason: string[], _opts: unknown, cmd: Command) => {
      const res = await clientOf(cmd).request<{ grant: GrantView }>('POST', `/api/grants/${encodeURIComponent(id)}/revoke`, { reason: reason.join(' ') });
      out(term`${res.grant.id.slice(0, 8)} revoked`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
