import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BENCH_ENV, startChild, tempDir, type Child } from '../lib/procs.js';
import { sleep } from '../lib/stats.js';
import { approvalFlow, type FlowResult } from './push.js';
import { ECHO_BODY, load, type LoadResult } from './gate.js';

/**
 * What notifications cost the gate, in one run: two gateways side by side, one with no receivers
 * and one with two (a receiver that answers 200 at once, and a dead one: its port refuses every
 * connection, so each of its deliveries fails and is retried), measured in alternating rounds:
 * LOW tool calls per second (autocannon) and the approval flow (HIGH calls approved by a bot over
 * the socket: approvals per second and decision → caller latency). The ratios are with / without.
 */
export interface NotifyResult {
  rounds: number;
  gateConnections: number;
  flowConcurrency: number;
  gate: { without: LoadResult[]; with: LoadResult[]; ratio: number };
  flow: { without: FlowResult[]; with: FlowResult[]; approvalsRatio: number; decisionP50Ratio: number; decisionP99Ratio: number };
  /** One caller at a time: the gateway is not saturated, so this is the latency a decision sees. */
  single: { without: FlowResult[]; with: FlowResult[]; decisionP50Ratio: number; decisionP99Ratio: number };
  /** Deliveries the live receiver got during the run (each approval's requested and resolved events). */
  delivered: number;
  /** The longest wait, after a round, for the live receiver's backlog to be delivered. */
  drainMs: number;
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * A receiver in a process of its own (so that answering it costs the load generator nothing) that
 * answers 200 at once and counts what it got.
 */
async function liveReceiver(): Promise<{ url: string; count(): Promise<number>; close(): Promise<void> }> {
  const script = `
    const http = require('node:http');
    let n = 0;
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => { n++; res.end('ok'); }); });
    server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
    process.on('message', () => process.send({ count: n }));
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  child.unref();
  const next = () => new Promise<{ port?: number; count?: number }>((resolve) => child.once('message', (m) => resolve(m as { port?: number; count?: number })));
  const { port } = await next();
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    async count() {
      const answer = next();
      child.send('count');
      return (await answer).count ?? 0;
    },
    close: async () => void child.kill(),
  };
}

/** A port nobody listens on: taken, then let go. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hooks`;
}

export async function notifyCost(plan: { rounds: number; gateConnections: number; gateDurationS: number; flowTotal: number; flowConcurrency: number; singleTotal: number; deadlineMs: number }): Promise<NotifyResult> {
  const dirs = [tempDir(), tempDir()];
  const children: Child[] = [];
  const live = await liveReceiver();
  let outboxDb: Database.Database | undefined;
  try {
    const receivers = [
      { name: 'live', url: live.url, secret: 'bench-secret-of-some-length', events: ['approval.requested', 'approval.resolved'], sensitivity: ['HIGH', 'CRITICAL'] },
      { name: 'dead', url: await deadUrl(), secret: 'bench-secret-of-some-length', events: ['approval.requested', 'approval.resolved'], sensitivity: ['HIGH', 'CRITICAL'] },
    ];
    const without = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: join(dirs[0]!.path, 'toolgate.db') });
    children.push(without);
    const withReceivers = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: join(dirs[1]!.path, 'toolgate.db'), BENCH_NOTIFY: JSON.stringify(receivers) });
    children.push(withReceivers);
    const gateTarget = (c: Child) => ({ url: c.url, path: '/tools/echo/call', method: 'POST' as const, token: c.tokens.dev, body: ECHO_BODY, cpuMs: c.cpuMs });
    const flow = (c: Child) => approvalFlow(c, { total: plan.flowTotal, concurrency: plan.flowConcurrency, style: { kind: 'wait' }, warmup: 50, deadlineMs: plan.deadlineMs });
    for (const c of children) await load(gateTarget(c), plan.gateConnections, 1);
    // Each round starts with the live receiver's backlog delivered: its sends are the round before's
    // cost, not the next one's. (The dead receiver's deliveries wait for their retries throughout.)
    outboxDb = new Database(join(dirs[1]!.path, 'toolgate.db'), { readonly: true });
    const backlog = outboxDb.prepare(`select count(*) as n from notify_deliveries where receiver = 'live' and status = 'pending'`);
    const drained = async () => {
      const started = performance.now();
      while ((backlog.get() as { n: number }).n > 0) {
        if (performance.now() - started > 60_000) throw new Error('the live receiver\'s backlog did not drain within 60 s');
        await sleep(20);
      }
      drainMs.push(performance.now() - started);
    };
    const drainMs: number[] = [];

    const single = (c: Child) => approvalFlow(c, { total: plan.singleTotal, concurrency: 1, style: { kind: 'wait' }, warmup: 20, deadlineMs: plan.deadlineMs });
    const result = {
      gate: { without: [] as LoadResult[], with: [] as LoadResult[] },
      flow: { without: [] as FlowResult[], with: [] as FlowResult[] },
      single: { without: [] as FlowResult[], with: [] as FlowResult[] },
    };
    for (let round = 0; round < plan.rounds; round++) {
      // The order alternates, so a machine that gets busier or quieter during the run weighs on both.
      const order = round % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
      for (const side of order) {
        const child = side === 'with' ? withReceivers : without;
        await drained();
        result.gate[side].push(await load(gateTarget(child), plan.gateConnections, plan.gateDurationS));
        await drained();
        result.flow[side].push(await flow(child));
        await drained();
        result.single[side].push(await single(child));
      }
    }
    const m = (xs: number[]) => median(xs);
    const flowWith = result.flow.with;
    const flowWithout = result.flow.without;
    return {
      rounds: plan.rounds,
      gateConnections: plan.gateConnections,
      flowConcurrency: plan.flowConcurrency,
      gate: { ...result.gate, ratio: m(result.gate.with.map((r) => r.rps)) / m(result.gate.without.map((r) => r.rps)) },
      flow: {
        ...result.flow,
        approvalsRatio: m(flowWith.map((r) => r.approvalsPerSecond)) / m(flowWithout.map((r) => r.approvalsPerSecond)),
        decisionP50Ratio: m(flowWith.map((r) => r.decisionToCallerMs.p50)) / m(flowWithout.map((r) => r.decisionToCallerMs.p50)),
        decisionP99Ratio: m(flowWith.map((r) => r.decisionToCallerMs.p99)) / m(flowWithout.map((r) => r.decisionToCallerMs.p99)),
      },
      single: {
        ...result.single,
        decisionP50Ratio: m(result.single.with.map((r) => r.decisionToCallerMs.p50)) / m(result.single.without.map((r) => r.decisionToCallerMs.p50)),
        decisionP99Ratio: m(result.single.with.map((r) => r.decisionToCallerMs.p99)) / m(result.single.without.map((r) => r.decisionToCallerMs.p99)),
      },
      delivered: await live.count(),
      drainMs: Math.max(...drainMs),
    };
  } finally {
    outboxDb?.close();
    for (const child of children) await child.stop();
    await live.close();
    for (const dir of dirs) dir.remove();
  }
}
