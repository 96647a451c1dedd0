import type { ApprovalView } from '../src/approvals/approval.js';

export interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
  cyan(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;
export const colours: Paint = { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), yellow: wrap(33, 39), green: wrap(32, 39), cyan: wrap(36, 39) };
const id = (s: string) => s;
export const plain: Paint = { bold: id, dim: id, red: id, yellow: id, green: id, cyan: id };

export function timeLeft(expiresAt: string, now = Date.now()): string {
  const ms = Date.parse(expiresAt) - now;
  if (ms <= 0) return 'expired';
  const s = Math.ceil(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function sensitivityColour(p: Paint, sensitivity: string) {
  return sensitivity === 'CRITICAL' ? p.red(p.bold(sensitivity)) : sensitivity === 'HIGH' ? p.yellow(sensitivity) : sensitivity;
}

/** `interrupted` stands out: the tool may or may not have run, and nobody will run it again. */
function executionColour(p: Paint, status: string) {
  return status === 'succeeded' ? p.green(status) : status === 'failed' ? p.red(status) : status === 'interrupted' ? p.yellow(p.bold(status)) : status;
}

/** One line: short id, tool, sensitivity, requester, time left, arguments (cut to fit). */
export function approvalLine(a: ApprovalView, p: Paint, now = Date.now()): string {
  const args = JSON.stringify(a.arguments);
  const shown = args.length > 120 ? `${args.slice(0, 117)}...` : args;
  const state = a.status === 'pending' ? `${timeLeft(a.expiresAt, now)} left` : a.status;
  const votes = a.requiredApprovals > 1 ? ` ${a.decisions.filter((d) => d.verdict === 'approve').length}/${a.requiredApprovals}` : '';
  return `${p.bold(p.cyan(a.shortId))}  ${p.bold(a.tool)}  ${sensitivityColour(p, a.sensitivity)}  by ${a.requester.id} (${a.requester.role})  ${p.dim(state)}${votes}  ${shown}`;
}

export function approvalDetails(a: ApprovalView, p: Paint): string {
  const lines = [
    `${p.bold('id')}          ${a.id}`,
    `${p.bold('tool')}        ${a.tool} (${sensitivityColour(p, a.sensitivity)})`,
    `${p.bold('requester')}   ${a.requester.id} (${a.requester.role})`,
    `${p.bold('status')}      ${a.status}${a.statusReason ? ` — ${a.statusReason}` : ''}`,
    `${p.bold('mode')}        ${a.mode}`,
    `${p.bold('requested')}   ${a.requestedAt}`,
    `${p.bold('expires')}     ${a.expiresAt}${a.status === 'pending' ? ` (${timeLeft(a.expiresAt)} left)` : ''}`,
    `${p.bold('approvals')}   ${a.decisions.filter((d) => d.verdict === 'approve').length}/${a.requiredApprovals}`,
    ...a.decisions.map((d) => `  ${d.at}  ${d.approver}  ${d.verdict}: ${d.reason}`),
    `${p.bold('execution')}   ${executionColour(p, a.execution.status)}${a.execution.error ? ` — ${a.execution.error}` : ''}`,
    `${p.bold('arguments')}   ${JSON.stringify(a.arguments, null, 2).split('\n').join('\n            ')}`,
  ];
  return lines.join('\n');
}
