import type { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import type { ApprovalRecord } from '../src/approvals/approval.js';
import { loadConfig } from '../src/config.js';
import type { DeliveryStatus } from '../src/notify/notify-store.js';
import { buildEvent } from '../src/notify/outbox.js';
import { notifySettings } from '../src/notify/receivers.js';
import { sendAttempt } from '../src/notify/sender.js';
import { loadToolgateFile } from '../src/tools/gateway-file.js';
import { safeJson, safeText } from './format.js';
import { withLocalStore } from './local.js';

/** A made-up pending request, for `notify test`: nothing in the database refers to it. */
function sampleRequest(now: number): ApprovalRecord {
  const id = randomUUID();
  return {
    id,
    shortId: id.replace(/-/g, '').slice(0, 8),
    tool: 'write_file',
    arguments: JSON.stringify({ path: 'notes/toolgate-notify-test.txt', content: 'a sample request from `toolgate notify test`' }),
    requesterId: 'toolgate-notify-test',
    requesterRole: 'developer',
    tokenId: null,
    sensitivity: 'HIGH',
    mode: 'decision',
    status: 'pending',
    statusReason: null,
    requiredApprovals: 1,
    instanceId: null,
    requestedAt: now,
    expiresAt: now + 300_000,
    decidedAt: null,
    executionStatus: 'none',
    executionInstanceId: null,
    executionStartedAt: null,
    executionFinishedAt: null,
    executionError: null,
    result: null,
    callHash: null,
    policyVersion: null,
    grantId: null,
  };
}

const STATUSES: DeliveryStatus[] = ['pending', 'delivered', 'dead'];
const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));

export function notifyCommand(program: Command) {
  const notify = program.command('notify').description('webhook and Slack notifications (toolgate.json "notify"; see docs/notifications.md)');

  notify
    .command('test <receiver>')
    .description("send a signed sample approval.requested event to a receiver and print its answer (exit 1 unless it took it)")
    .action(async (name: string) => {
      const config = loadConfig(process.env);
      const settings = notifySettings(loadToolgateFile(config.toolgateConfigPath).file, process.env);
      const receiver = settings.receivers.get(name);
      if (!receiver) {
        const known = settings.receivers.all.map((r) => r.name);
        throw new Error(`no receiver named "${name}" in toolgate.json "notify"${known.length > 0 ? ` (there are: ${known.join(', ')})` : ' (it has none)'}`);
      }
      const now = Date.now();
      const event = buildEvent({ id: randomUUID(), type: 'approval.requested', now, record: sampleRequest(now), decisions: [], publicUrl: config.publicUrl });
      const started = performance.now();
      const result = await sendAttempt(receiver, settings.slack, { deliveryId: `test-${randomUUID()}`, attempt: 1, event, payload: JSON.stringify(event), original: null }, { now });
      const ms = Math.round(performance.now() - started);
      const target = receiver.channel ? `Slack channel ${receiver.channel}` : receiver.url!;
      process.stdout.write(`${safeText(`POST ${target} → ${result.status === null ? 'no answer' : `HTTP ${result.status}`} in ${ms} ms`)}\n`);
      if (result.body) process.stdout.write(`${result.body.split('\n').map(safeText).join('\n')}\n`);
      if (!result.ok) {
        process.stderr.write(`toolgate: the receiver did not take it: ${safeText(result.error ?? 'failed')}${result.permanent ? ' (retrying would not help)' : ''}\n`);
        process.exitCode = 1;
      }
    });

  notify
    .command('deliveries')
    .description('list the outbox, newest first (acts on DATABASE_URL or DATABASE_PATH directly)')
    .option('--status <status>', `only ${STATUSES.join(', ')}`)
    .option('--receiver <name>', 'only this receiver')
    .option('--request <id>', 'only the deliveries of this request (full id)')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (opts: { status?: string; receiver?: string; request?: string; limit: string; json?: boolean }) => {
      if (opts.status !== undefined && !STATUSES.includes(opts.status as DeliveryStatus)) throw new Error(`--status must be one of ${STATUSES.join(', ')}`);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new Error('--limit must be a whole number from 1 to 10000');
      const rows = await withLocalStore((store) =>
        store.notify.deliveries({ limit, status: opts.status as DeliveryStatus | undefined, receiver: opts.receiver, requestId: opts.request?.toLowerCase() }),
      );
      if (opts.json) {
        const shown = rows.map(({ payload: _payload, ...row }) => row);
        return void process.stdout.write(`${safeJson(shown, 2)}\n`);
      }
      if (rows.length === 0) return void process.stdout.write('no deliveries\n');
      process.stdout.write(`${'created'.padEnd(21)} ${'receiver'.padEnd(16)} ${'event'.padEnd(19)} request  ${'status'.padEnd(9)} tries  last answer\n`);
      for (const d of rows) {
        const answer = d.status === 'delivered' ? `HTTP ${d.lastStatus ?? '?'} at ${iso(d.deliveredAt)}` : [d.lastStatus === null ? null : `HTTP ${d.lastStatus}`, d.lastError].filter(Boolean).join(': ') || '-';
        const next = d.status === 'pending' ? `; next try ${iso(d.nextAttemptAt)}` : '';
        process.stdout.write(
          `${safeText(`${iso(d.createdAt).padEnd(21)} ${d.receiver.padEnd(16)} ${d.eventType.padEnd(19)} ${d.requestId.slice(0, 8)} ${d.status.padEnd(9)} ${String(d.attempts).padStart(5)}  ${answer}${next}`)}\n`,
        );
      }
    });
}
