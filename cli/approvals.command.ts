import type { Command } from 'commander';
import type { ApprovalSummary, ApprovalView } from '../src/approvals/approval.js';
import { GatewayClient, serverFrom, tokenFrom } from './client.js';
import { approvalDetails, approvalLine, colours, plain, safeJson, term, type TerminalText } from './format.js';

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

  for (const verdict of ['approve', 'reject'] as const) {
    approvals
      .command(`${verdict} <id> <reason...>`)
      .description(`${verdict} a pending request, with a reason`)
      .action(async (id: string, reason: string[], _opts: unknown, cmd: Command) => {
        const res = await clientOf(cmd).request<{ approval: ApprovalView }>('POST', `/api/approvals/${encodeURIComponent(id)}/${verdict}`, {
          reason: reason.join(' '),
        });
        out(term`${res.approval.shortId} ${res.approval.status}`);
      });
  }
}
