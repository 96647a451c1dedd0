import { ApproverBot } from '../lib/approver-bot.js';
import { httpJson, keepAliveAgent, pool, type JsonResponse } from '../lib/http.js';
import { withGateway, type Child } from '../lib/procs.js';
import { sleep, summarize, type Summary } from '../lib/stats.js';

export interface ScaleResult {
  mode: 'wait' | 'async';
  callers: number;
  /** Gateways the callers were spread over (one database); the memory figures are the largest of one gateway process. */
  gateways?: number;
  created: number;
  failures: number;
  /** Each kind of failure and how many: `<status> <code>` for an HTTP answer, else the client error. */
  failureReasons: Record<string, number>;
  /** First POST → the approver's socket has the last request. */
  pushAllS: number;
  pushMs: Summary;
  idleRssMb: number;
  rssAllWaitingMb: number;
  /** V8 heap after a full GC (live) and reserved, in the gateway when all are waiting. */
  heapAllWaitingMb: { used: number; total: number; external: number };
  /** Live heap added per waiting caller: (live heap all waiting − live heap idle) / callers. */
  liveHeapPerCallerKb: number;
  /** VmHWM of the gateway process at the end: the peak over the whole case, decisions included. */
  peakRssMb: number;
  /** First decide frame → the last caller has its response (wait) or the last decide.ok (async). */
  decideAllS: number;
  /** async only: first decide frame → the last approved request has run. */
  executeAllS: number | null;
  approvalsPerSecond: number;
}

const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;

async function until(condition: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * N callers waiting at once on one gateway with one approver. `wait`: N HTTP requests held open
 * (N sockets here and N in the gateway); `async`: N requests accepted with 202 and left pending.
 */
export async function scaleCase(mode: 'wait' | 'async', callers: number, options: { timeoutMs: number }): Promise<ScaleResult> {
  return withGateway({ APPROVAL_MAX_PENDING: String(callers * 2), APPROVAL_TIMEOUT: '900' }, (gw) => scaleOn([gw], mode, callers, options));
}

/** The same spread over `gateways` on one database: caller i calls gateway i mod n; the approver is connected to the first. */
export async function scaleOn(gateways: Child[], mode: 'wait' | 'async', callers: number, options: { timeoutMs: number }): Promise<ScaleResult> {
  const gw = gateways[0]!;
  const at = (i: number) => gateways[i % gateways.length]!;
  const most = (f: (g: Child) => number) => Math.max(...gateways.map(f));
  await sleep(300);
  const idleRssKb = most((g) => g.rssKb());
  const idleHeap = await Promise.all(gateways.map((g) => g.ask<{ memory: NodeJS.MemoryUsage }>({ type: 'counts' }, 'counts')));
  const requestedAt: number[] = new Array(callers);
  const pushLatencies: number[] = [];
  const ids: string[] = [];
  let lastReceipt = 0;
  let decidedOk = 0;
  let lastDecideOk = 0;
  const bot = await ApproverBot.connect(gw.url, gw.tokens.admin, {
    onRequested(approval, at) {
      const i = Number(String((approval.arguments as { path?: unknown }).path).split('/').pop());
      pushLatencies.push(at - requestedAt[i]!);
      ids.push(approval.id);
      lastReceipt = at;
    },
    onDecided(_ref, ok, at) {
      if (ok) decidedOk++;
      lastDecideOk = at;
    },
  });
  const agent = keepAliveAgent(mode === 'wait' ? callers : 256);
  let failures = 0;
  /** What the failures were: an HTTP status and error code, or the client's error. */
  const failureReasons: Record<string, number> = {};
  const failed = (reason: string) => {
    failures++;
    failureReasons[reason] = (failureReasons[reason] ?? 0) + 1;
  };
  const answers: Promise<JsonResponse | null>[] = [];
  let lastAnswer = 0;
  const body = (i: number) => ({ arguments: { path: `scale/${i}`, content: 'bench' } });
  try {
    const t0 = performance.now();
    if (mode === 'wait') {
      // Open in batches and let the gateway keep up, so the accept queue never overflows
      // (an overflowing SYN queue costs a 1 s retransmit and measures the kernel, not us).
      for (let i = 0; i < callers; i++) {
        requestedAt[i] = performance.now();
        answers.push(
          httpJson(agent, at(i).url, 'POST', '/tools/write_file/call', { token: gw.tokens.dev, body: body(i), timeoutMs: options.timeoutMs }).then(
            (res) => {
              lastAnswer = performance.now();
              if (res.status !== 200) failed(`${res.status} ${(res.body as { error?: { code?: string } } | undefined)?.error?.code ?? ''}`.trim());
              return res;
            },
            (err: Error) => {
              failed((err as NodeJS.ErrnoException).code ?? err.message.slice(0, 60));
              return null;
            },
          ),
        );
        if (i % 250 === 249) await until(() => ids.length >= i - 500 || failures > 0, options.timeoutMs, 'the gateway to take the batch');
      }
    } else {
      await pool(callers, 256, Date.now() + options.timeoutMs, async (i) => {
        requestedAt[i] = performance.now();
        const res = await httpJson(agent, at(i).url, 'POST', '/tools/write_file/call', { token: gw.tokens.dev, body: body(i), headers: { prefer: 'respond-async' } }).catch((err: Error) => {
          failed((err as NodeJS.ErrnoException).code ?? err.message.slice(0, 60));
          return null;
        });
        if (res && res.status !== 202) failed(`${res.status} ${(res.body as { error?: { code?: string } } | undefined)?.error?.code ?? ''}`.trim());
      });
    }
    await until(() => ids.length + failures >= callers, options.timeoutMs, `${callers} requests to reach the approver`);
    const pushAllS = (lastReceipt - t0) / 1000;
    await sleep(200);
    const rssAllWaitingKb = most((g) => g.rssKb());
    const waiting = await Promise.all(gateways.map((g) => g.ask<{ memory: NodeJS.MemoryUsage }>({ type: 'counts' }, 'counts')));
    // The gateway holding the most: with one gateway, that one.
    const fullest = waiting.reduce((a, b, i) => (b.memory.heapUsed - idleHeap[i]!.memory.heapUsed > a.grown ? { grown: b.memory.heapUsed - idleHeap[i]!.memory.heapUsed, i } : a), { grown: -Infinity, i: 0 });
    const memory = waiting[fullest.i]!.memory;
    const idle = idleHeap[fullest.i]!;
    const heapAllWaitingMb = { used: mb(memory.heapUsed / 1024), total: mb(memory.heapTotal / 1024), external: mb(memory.external / 1024) };

    const tDecide = performance.now();
    for (const id of ids) bot.approve(id);
    let decideAllS: number;
    let executeAllS: number | null = null;
    if (mode === 'wait') {
      await Promise.race([Promise.all(answers), sleep(options.timeoutMs)]);
      decideAllS = (lastAnswer - tDecide) / 1000;
    } else {
      await until(() => decidedOk >= ids.length, options.timeoutMs, 'every decide.ok');
      decideAllS = (lastDecideOk - tDecide) / 1000;
      // Async requests run in the gateway after approval; wait for the last one.
      const last = ids[ids.length - 1]!;
      const deadline = Date.now() + options.timeoutMs;
      for (;;) {
        // A keep-alive socket left idle while the decisions ran may have been closed by the server: retry on a reset.
        const res = await httpJson<{ approval: { execution: { status: string } } }>(agent, gw.url, 'GET', `/api/approvals/${last}?wait=30`, { token: gw.tokens.dev }).catch(() => null);
        const status = res?.body?.approval?.execution.status;
        if (status === 'succeeded' || status === 'failed' || Date.now() > deadline) break;
      }
      executeAllS = (performance.now() - tDecide) / 1000;
    }
    const peakRssKb = most((g) => g.peakRssKb());
    return {
      mode,
      callers,
      gateways: gateways.length,
      created: ids.length,
      failures,
      failureReasons,
      pushAllS,
      pushMs: summarize(pushLatencies),
      idleRssMb: mb(idleRssKb),
      rssAllWaitingMb: mb(rssAllWaitingKb),
      heapAllWaitingMb,
      liveHeapPerCallerKb: Math.round(((memory.heapUsed - idle.memory.heapUsed) / 1024 / Math.ceil(callers / gateways.length)) * 10) / 10,
      peakRssMb: mb(peakRssKb),
      decideAllS,
      executeAllS,
      approvalsPerSecond: ids.length / decideAllS,
    };
  } finally {
    agent.destroy();
    await bot.close();
  }
}
