import type { Command } from 'commander';
import type { ApprovalView } from '../src/approvals/approval.js';
import { GatewayClient, serverFrom, tokenFrom } from './client.js';
import { approvalDetails, approvalLine, colours, plain } from './format.js';

function clientOf(cmd: Command) {
  const opts = cmd.optsWithGlobals<{ server?: string; token?: string }>();
  return new GatewayClient(serverFrom(opts), tokenFrom(opts));
}

export function approvalsCommand(program: Command) {
  const approvals = program.command('approvals').description('one-shot approval commands over HTTP');
  const paint = () => (process.stdout.isTTY ? colours : plain);

  approvals
    .command('list')
    .description('pending requests, oldest first')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; json?: boolean }, cmd: Command) => {
      const res = await clientOf(cmd).request<{ pending_approvals: ApprovalView[] }>('GET', `/api/approvals/pending?limit=${encodeURIComponent(opts.limit)}`);
      if (opts.json) return void process.stdout.write(`${JSON.stringify(res.pending_approvals, null, 2)}\n`);
      if (res.pending_approvals.length === 0) process.stdout.write('no pending requests\n');
      for (const a of res.pending_approvals) process.stdout.write(`${approvalLine(a, paint())}\n`);
    });

  approvals
    .command('show <id>')
    .description('one request, by id or short id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const res = await clientOf(cmd).request<{ approval: ApprovalView }>('GET', `/api/approvals/${encodeURIComponent(id)}`);
      process.stdout.write(opts.json ? `${JSON.stringify(res.approval, null, 2)}\n` : `${approvalDetails(res.approval, paint())}\n`);
    });

  for (const verdict of ['approve', 'reject'] as const) {
    approvals
      .command(`${verdict} <id> <reason...>`)
      .description(`${verdict} a pending request, with a reason`)
      .action(async (id: string, reason: string[], _opts: unknown, cmd: Command) => {
        const res = await clientOf(cmd).request<{ approval: ApprovalView }>('POST', `/api/approvals/${encodeURIComponent(id)}/${verdict}`, {
          reason: reason.join(' '),
        });
        process.stdout.write(`${res.approval.shortId} ${res.approval.status}\n`);
      });
  }
}
