import { join } from 'node:path';
import { ApproverBot } from '../lib/approver-bot.js';
import { httpJson, keepAliveAgent, pool } from '../lib/http.js';
import { startChild, withGateway } from '../lib/procs.js';
import { monoMs, summarize, type Summary } from '../lib/stats.js';

/**
 * A decision written by another process, found by the gateway's polling fallback.
 * Measured on CLOCK_MONOTONIC (process.hrtime.bigint(), shared by all processes on the machine):
 * from the moment the decider's transaction has committed (taken in the decider) to the moment
 * the waiting caller's response has arrived (taken here). The decider waits a random 0..interval
 * after it learns of a request, so decisions fall at every phase of the polling cycle.
 */
export interface FallbackResult {
  pollingIntervalS: number;
  requests: number;
  failures: number;
  latencyMs: Summary;
  budgetMs: number;
}

export async function fallbackLatency(options: { pollingIntervalS: number; total: number; concurrency: number; deadlineMs: number }): Promise<FallbackResult> {
  const intervalMs = options.pollingIntervalS * 1000;
  return withGateway({ APPROVAL_POLLING_INTERVAL: String(options.pollingIntervalS) }, async (gw, dir) => {
    const decider = await startChild('decider', { DATABASE_PATH: join(dir, 'toolgate.db') });
    const committed = new Map<string, number>();
    const waiting = new Map<string, (at: number | null) => void>();
    decider.proc.on('message', (m: { type?: string; id?: string; committedAt?: string; error?: string }) => {
      if (m?.type !== 'decided' || !m.id) return;
      const at = m.committedAt ? Number(BigInt(m.committedAt)) / 1e6 : null;
      committed.set(m.id, at ?? NaN);
      waiting.get(m.id)?.(at);
    });
    const reportOf = (id: string) =>
      new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 2000);
        waiting.set(id, (at) => {
          clearTimeout(timer);
          resolve(at ?? undefined);
        });
      });
    // The bot only learns the ids (the push); the decision itself is made by the other process.
    const bot = await ApproverBot.connect(gw.url, gw.tokens.admin, {
      onRequested(approval) {
        decider.proc.send({ type: 'decide', id: approval.id, delayMs: Math.round(Math.random() * intervalMs) });
      },
    });
    const agent = keepAliveAgent(options.concurrency);
    const latencies: number[] = [];
    let failures = 0;
    try {
      const done = await pool(options.total, options.concurrency, Date.now() + options.deadlineMs, async (i) => {
        const res = await httpJson<{ approval?: { id: string } }>(agent, gw.url, 'POST', '/tools/write_file/call', {
          token: gw.tokens.dev,
          body: { arguments: { path: `fallback/${i}`, content: 'bench' } },
        });
        const answeredAt = monoMs();
        const id = res.body.approval?.id;
        // The decider's report normally arrives long before the fallback wakes the caller; wait briefly if not.
        const at = id ? (committed.get(id) ?? (await reportOf(id))) : undefined;
        if (res.status !== 200 || at === undefined || !Number.isFinite(at)) failures++;
        else latencies.push(answeredAt - at);
      });
      return { pollingIntervalS: options.pollingIntervalS, requests: done, failures, latencyMs: summarize(latencies), budgetMs: intervalMs + 100 };
    } finally {
      agent.destroy();
      await bot.close();
      await decider.stop();
    }
  });
}
