import { ApproverBot } from '../lib/approver-bot.js';
import { httpJson, keepAliveAgent, pool } from '../lib/http.js';
import type { Child } from '../lib/procs.js';
import { sleep, summarize, type Summary } from '../lib/stats.js';

/**
 * How each interval is measured (all with performance.now() in this one process, which holds both
 * the callers and the bot, so there is no clock to synchronize):
 * - push: the caller's timestamp just before its POST is written → the bot's timestamp when the
 *   `approval.requested` frame is received (matched by a unique tag in the arguments).
 * - decisionToCaller: the bot's timestamp just before it writes its `decide` frame → the caller's
 *   timestamp when its HTTP response has fully arrived (approved, the tool run, the result back).
 * - endToEnd: the caller's POST → its response.
 */
export interface FlowResult {
  design: string;
  concurrency: number;
  requests: number;
  failures: number;
  pushMs: Summary;
  decisionToCallerMs: Summary;
  endToEndMs: Summary;
  approvalsPerSecond: number;
  wallS: number;
}

type CallerStyle =
  | { kind: 'wait' }
  | { kind: 'long-poll' }
  | { kind: 'poll'; intervalMs: number };

const designName = (style: CallerStyle) =>
  style.kind === 'wait'
    ? 'toolgate: push to the approver, in-process wake-up of the waiting caller'
    : style.kind === 'long-poll'
      ? 'toolgate async: `Prefer: respond-async`, then `GET ?wait=60` long-poll'
      : `origin: caller polls the database every ${style.intervalMs >= 1000 ? `${style.intervalMs / 1000} s` : `${style.intervalMs} ms`}`;

/**
 * A bot approves every request it is pushed; `concurrency` callers each make HIGH tool calls
 * (write_file) one after another until `total` are done or `deadlineMs` passes. With
 * `approverAt`, the bot is connected to that gateway instead (several gateways on one database).
 */
export async function approvalFlow(
  gw: Child,
  options: { total: number; concurrency: number; style: CallerStyle; warmup?: number; deadlineMs: number; label?: string; approverAt?: Child },
): Promise<FlowResult> {
  const { style } = options;
  const requestedAt = new Map<string, number>();
  const received = new Map<string, number>();
  const decidedAt = new Map<string, number>();
  const idOfTag = new Map<string, string>();
  // The approver may be connected to another gateway on the same database (the callers stay on `gw`).
  const bot = await ApproverBot.connect((options.approverAt ?? gw).url, gw.tokens.admin, {
    onRequested(approval, at) {
      const tag = String((approval.arguments as { path?: unknown }).path);
      received.set(tag, at);
      idOfTag.set(tag, approval.id);
      decidedAt.set(tag, bot.approve(approval.id));
    },
  });
  const agent = keepAliveAgent(options.concurrency);
  const run = Math.random().toString(36).slice(2, 8);
  let failures = 0;
  const push: number[] = [];
  const toCaller: number[] = [];
  const endToEnd: number[] = [];

  const call = async (tag: string): Promise<boolean> => {
    const body = { arguments: { path: tag, content: 'bench' } };
    const t0 = performance.now();
    requestedAt.set(tag, t0);
    let answeredAt = 0;
    if (style.kind === 'wait') {
      const res = await httpJson(agent, gw.url, 'POST', '/tools/write_file/call', { token: gw.tokens.dev, body });
      answeredAt = performance.now();
      if (res.status !== 200) return false;
    } else {
      const res = await httpJson<{ approval: { id: string } }>(agent, gw.url, 'POST', '/tools/write_file/call', {
        token: gw.tokens.dev,
        body,
        headers: { prefer: 'respond-async' },
      });
      if (res.status !== 202) return false;
      const id = res.body.approval.id;
      const settled = (a: { status: string; execution: { status: string } }) => a.status !== 'pending' && a.execution.status !== 'pending' && a.execution.status !== 'running';
      for (let attempt = 0; ; attempt++) {
        if (attempt > 1000) return false;
        if (style.kind === 'poll') await sleep(style.intervalMs);
        const path = style.kind === 'poll' ? `/api/approvals/${id}` : `/api/approvals/${id}?wait=60`;
        const got = await httpJson<{ approval: { status: string; execution: { status: string } } }>(agent, gw.url, 'GET', path, { token: gw.tokens.dev });
        if (got.status !== 200) return false;
        if (settled(got.body.approval)) {
          answeredAt = performance.now();
          if (got.body.approval.status !== 'approved' || got.body.approval.execution.status !== 'succeeded') return false;
          break;
        }
      }
    }
    const r = received.get(tag);
    const d = decidedAt.get(tag);
    if (r === undefined || d === undefined) return false;
    push.push(r - t0);
    toCaller.push(answeredAt - d);
    endToEnd.push(answeredAt - t0);
    return true;
  };

  try {
    // Warm-up (JIT, statement caches, sockets): not recorded.
    await pool(options.warmup ?? 0, options.concurrency, Date.now() + 30_000, async (i) => {
      await call(`warm/${run}/${i}`);
    });
    push.length = toCaller.length = endToEnd.length = 0;
    const started = performance.now();
    const done = await pool(options.total, options.concurrency, Date.now() + options.deadlineMs, async (i) => {
      if (!(await call(`bench/${run}/${i}`))) failures++;
    });
    const wallS = (performance.now() - started) / 1000;
    return {
      design: options.label ?? designName(style),
      concurrency: options.concurrency,
      requests: done,
      failures,
      pushMs: summarize(push),
      decisionToCallerMs: summarize(toCaller),
      endToEndMs: summarize(endToEnd),
      approvalsPerSecond: (done - failures) / wallS,
      wallS,
    };
  } finally {
    agent.destroy();
    await bot.close();
  }
}
