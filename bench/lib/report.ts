import type { BaselineResult } from '../sections/baseline.js';
import type { StatementsResult } from '../sections/statements.js';
import type { FallbackResult } from '../sections/fallback.js';
import type { PostgresResult } from '../sections/postgres.js';
import type { ReceiptsResult } from '../sections/receipts.js';
import type { NotifyResult } from '../sections/notify.js';
import type { LoadResult } from '../sections/gate.js';
import type { GateRow } from '../sections/gate-suite.js';
import type { GrowthResult } from '../sections/growth.js';
import type { FlowResult } from '../sections/push.js';
import type { ScaleResult } from '../sections/scale.js';
import type { Machine } from './machine.js';
import type { ProfileSummary } from './profile.js';
import type { Summary } from './stats.js';

export interface BenchResults {
  startedAt: string;
  command: string;
  quick: boolean;
  machine: Machine;
  gate?: GateRow[];
  gateProfile?: { connections: number; result: LoadResult; profile: ProfileSummary | null };
  push?: FlowResult[];
  pushProfile?: { connections: number; result: FlowResult; profile: ProfileSummary | null };
  polling?: FlowResult[];
  fallback?: FallbackResult[];
  scale?: ScaleResult[];
  growth?: GrowthResult[];
  receipts?: ReceiptsResult;
  notify?: NotifyResult;
  baseline?: BaselineResult;
  statements?: StatementsResult[];
  postgres?: PostgresResult;
  errors: Record<string, string>;
  durationS?: number;
  loadAverageAtEnd?: number[];
  verdicts?: Verdict[];
}

export interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
  /** How far off, when missed. */
  gap: string;
}

const f = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const ms = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) : 'n/a');
const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const pcts = (s: Summary) => `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)}`;
/** CPU time the server spent per request, in microseconds. */
export const cpuPerRequestUs = (r: LoadResult) => (r.requests > 0 ? (r.serverCpuCores * r.durationS * 1e6) / r.requests : NaN);

export function verdicts(r: BenchResults): Verdict[] {
  const out: Verdict[] = [];
  const gate50 = r.gate?.find((g) => g.connections === 50) ?? r.gate?.at(-1);
  out.push(
    gate50
      ? {
          target: `Gate ≥ 0.6× the req/s of a minimal Hono proxy to the same upstream MCP server (${gate50.connections} connections)`,
          measured: `${f(gate50.ratioProxy, 3)}× (${int(gate50.ours.rps)} vs ${int(gate50.proxy.rps)} req/s; ${f(gate50.ratio, 3)}× a bare handler with no upstream)`,
          met: gate50.ratioProxy >= 0.6,
          gap: gate50.ratioProxy >= 0.6 ? '' : `${f(0.6 / gate50.ratioProxy, 2)}× short of the target (needs ${int(gate50.proxy.rps * 0.6)} req/s)`,
        }
      : { target: 'Gate ≥ 0.6× a minimal Hono proxy req/s', measured: 'not run', met: null, gap: '' },
  );
  out.push(
    gate50
      ? {
          target: `Gate p99 < 15 ms at ${gate50.connections} connections`,
          measured: `${ms(gate50.ours.latencyMs.p99)} ms`,
          met: gate50.ours.latencyMs.p99 < 15,
          gap: gate50.ours.latencyMs.p99 < 15 ? '' : `${ms(gate50.ours.latencyMs.p99 - 15)} ms over`,
        }
      : { target: 'Gate p99 < 15 ms at 50 connections', measured: 'not run', met: null, gap: '' },
  );
  const push = r.push ?? [];
  const worst = (pick: (x: FlowResult) => number) => (push.length ? push.reduce((a, b) => (pick(b) > pick(a) ? b : a)) : undefined);
  const pushWorst = worst((x) => x.pushMs.p99);
  out.push(
    pushWorst
      ? {
          target: 'Push (request made → approver has it) p99 < 5 ms',
          measured: push.map((x) => `${ms(x.pushMs.p99)} ms at ${x.concurrency}`).join(', '),
          met: pushWorst.pushMs.p99 < 5,
          gap: pushWorst.pushMs.p99 < 5 ? '' : `${ms(pushWorst.pushMs.p99 - 5)} ms over at ${pushWorst.concurrency} callers`,
        }
      : { target: 'Push p99 < 5 ms', measured: 'not run', met: null, gap: '' },
  );
  const d2cWorst = worst((x) => x.decisionToCallerMs.p99);
  out.push(
    d2cWorst
      ? {
          target: 'Decision sent → caller has its response p99 < 10 ms',
          measured: push.map((x) => `${ms(x.decisionToCallerMs.p99)} ms at ${x.concurrency}`).join(', '),
          met: d2cWorst.decisionToCallerMs.p99 < 10,
          gap: d2cWorst.decisionToCallerMs.p99 < 10 ? '' : `${ms(d2cWorst.decisionToCallerMs.p99 - 10)} ms over at ${d2cWorst.concurrency} callers`,
        }
      : { target: 'Decision → caller p99 < 10 ms', measured: 'not run', met: null, gap: '' },
  );
  const fb = r.fallback ?? [];
  out.push(
    fb.length
      ? {
          target: 'Decision by another process reaches the caller within interval + 100 ms (max)',
          measured: fb.map((x) => `${ms(x.latencyMs.max)} ms at ${x.pollingIntervalS} s`).join(', '),
          met: fb.every((x) => x.latencyMs.max <= x.budgetMs),
          gap: fb
            .filter((x) => x.latencyMs.max > x.budgetMs)
            .map((x) => `${ms(x.latencyMs.max - x.budgetMs)} ms over at ${x.pollingIntervalS} s`)
            .join(', '),
        }
      : { target: 'Fallback within interval + 100 ms', measured: 'not run', met: null, gap: '' },
  );
  const tenK = (r.scale ?? []).filter((s) => s.callers === 10_000);
  const biggest = (r.scale ?? []).reduce((m, s) => Math.max(m, s.callers), 0);
  const rssRows = tenK.length ? tenK : (r.scale ?? []).filter((s) => s.callers === biggest);
  const rssWorst = rssRows.reduce<ScaleResult | undefined>((a, b) => (!a || b.peakRssMb > a.peakRssMb ? b : a), undefined);
  out.push(
    rssWorst
      ? {
          target: '10,000 waiting callers < 300 MB RSS (gateway process, peak)',
          measured: `${rssRows.map((s) => `${s.peakRssMb} MB ${s.mode}`).join(', ')}${tenK.length ? '' : ` (only ${int(biggest)} callers measured)`}`,
          met: tenK.length ? rssWorst.peakRssMb < 300 : null,
          gap: tenK.length && rssWorst.peakRssMb >= 300 ? `${f(rssWorst.peakRssMb - 300, 0)} MB over (${rssWorst.mode})` : '',
        }
      : { target: '10,000 waiting callers < 300 MB RSS', measured: 'not run', met: null, gap: '' },
  );
  const rate = push.find((x) => x.concurrency === 100) ?? push.at(-1);
  out.push(
    rate
      ? {
          target: '1,000 approvals/s end to end',
          measured: `${int(rate.approvalsPerSecond)}/s (${rate.concurrency} waiting callers, one bot)${
            r.scale?.length ? `; bulk: ${r.scale.map((s) => `${int(s.approvalsPerSecond)}/s ${s.mode} ${int(s.callers)}`).join(', ')}` : ''
          }`,
          met: rate.approvalsPerSecond >= 1000,
          gap: rate.approvalsPerSecond >= 1000 ? '' : `${f(1000 / rate.approvalsPerSecond, 2)}× short (${int(1000 - rate.approvalsPerSecond)}/s)`,
        }
      : { target: '1,000 approvals/s', measured: 'not run', met: null, gap: '' },
  );
  const across = r.postgres?.flow.find((x) => x.where === 'postgres, across two instances' && x.concurrency === 1);
  out.push(
    across
      ? {
          target: 'PostgreSQL, two instances: push (request on A → approver on B) and decision (on B) → caller (on A) p99 < 25 ms at 1 caller',
          measured: `push ${ms(across.pushMs.p99)} ms, decision → caller ${ms(across.decisionToCallerMs.p99)} ms (${int(across.requests)} approvals, ${across.failures} failed)`,
          met: across.pushMs.p99 < 25 && across.decisionToCallerMs.p99 < 25 && across.failures === 0,
          gap: [across.pushMs.p99 >= 25 ? `push ${ms(across.pushMs.p99 - 25)} ms over` : '', across.decisionToCallerMs.p99 >= 25 ? `decision → caller ${ms(across.decisionToCallerMs.p99 - 25)} ms over` : '', across.failures ? `${across.failures} failed` : '']
            .filter(Boolean)
            .join(', '),
        }
      : { target: 'PostgreSQL: cross-instance push and decision → caller p99 < 25 ms at 1 caller', measured: 'not run', met: null, gap: '' },
  );
  if (r.baseline) {
    const rows = [...r.baseline.gate.map((g) => ({ what: `gate at ${g.connections}`, ...g })), ...r.baseline.flow.map((x) => ({ what: `approvals at ${x.concurrency}`, ...x }))];
    // Within noise: the shortfall is no larger than the gap between one build's own two runs (at least 10 %).
    const floor = (x: { noise: number }) => 1 - Math.max(0.1, x.noise);
    const regressed = rows.filter((x) => x.ratio < floor(x));
    out.push({
      target: `No regression against ${r.baseline.baseline.commit.split(' ')[0]} beyond noise (ratio ours/baseline ≥ 1 − the larger of 10 % and one build's own run-to-run gap)`,
      measured: rows.map((x) => `${x.what}: ${f(x.ratio, 2)}× (noise ${f(x.noise * 100, 0)} %${x.cpu ? `; CPU per call ${f(x.cpu.ratio, 2)}× cheaper` : ''})`).join(', '),
      met: regressed.length === 0,
      gap: regressed.map((x) => `${x.what} at ${f(x.ratio, 2)}×, floor ${f(floor(x), 2)}`).join(', '),
    });
  }
  return out;
}

function cpuPair(cpu: { ours: [number, number]; baseline: [number, number] } | undefined): string {
  if (!cpu) return '—';
  const mean = (p: [number, number]) => int((p[0] + p[1]) / 2);
  return `${mean(cpu.ours)} / ${mean(cpu.baseline)}`;
}

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

function profileSection(title: string, p: { profile: ProfileSummary | null } | undefined): string {
  if (!p?.profile) return '';
  const s = p.profile;
  return [
    `**${title}** — V8 CPU profile of the gateway process over the measured window (${int(s.totalMs)} ms sampled, ${f(s.busyPct, 1)} % busy). Self time, share of busy time:`,
    '',
    table(
      ['function', 'where', 'self ms', '%'],
      s.top.map((e) => [`\`${e.name}\``, e.where ? `\`${e.where}\`` : 'native', int(e.selfMs), f(e.selfPct, 1)]),
    ),
    '',
    'By area (self time, share of busy time):',
    '',
    table(
      ['area', 'self ms', '%'],
      s.byArea.map((a) => [a.area, int(a.selfMs), f(a.selfPct, 1)]),
    ),
    '',
  ].join('\n');
}

export function renderReport(r: BenchResults, jsonPath: string): string {
  const m = r.machine;
  const out: string[] = [];
  out.push('# Benchmarks');
  out.push('');
  out.push(`Written by \`${r.command}\` on ${r.startedAt.replace('T', ' ').slice(0, 19)} UTC (${f(r.durationS ?? NaN, 0)} s); raw numbers in \`${jsonPath}\`. Do not edit by hand: the next run rewrites this file.`);
  if (r.quick) out.push('', '> **Quick run** (`--quick`): fewer requests and shorter runs, for development. The committed report comes from a full run.');
  out.push('');
  out.push('## Verdicts');
  out.push('');
  out.push(
    table(
      ['target (DESIGN.md quality bars)', 'measured', 'verdict', 'gap'],
      (r.verdicts ?? []).map((v) => [v.target, v.measured, v.met === null ? 'not measured' : v.met ? '**met**' : '**missed**', v.gap || '—']),
    ),
  );
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(
    table(
      ['', ''],
      [
        ['CPU', `${m.cpuModel}, ${m.cores} cores`],
        ['memory', `${m.memoryGb} GB`],
        ['Node', m.node],
        ['kernel', m.kernel],
        ['open files (`ulimit -n`)', `${m.openFilesLimit.soft} (hard ${m.openFilesLimit.hard})`],
        ['`net.core.somaxconn`', String(m.somaxconn)],
        ['load average at start / end', `${m.loadAverageAtStart.join(' ')} / ${(r.loadAverageAtEnd ?? []).join(' ')}`],
      ],
    ),
  );
  out.push('');
  out.push(
    'The load generator, the bot approver and the callers run in the parent process; each server under test (the gateway, the minimal proxy, the bare Hono handler) runs in its own child process, and the gateway\'s upstream MCP server in a grandchild. On two cores they compete for CPU, and the machine may be shared: **compare the ratios measured within one run, not lone absolute numbers**.',
  );
  out.push('');

  if (r.gate) {
    out.push('## 1. Gate overhead: a LOW tool call vs a minimal proxy and a bare Hono handler');
    out.push('');
    out.push(
      '`POST /tools/echo/call` with a developer token, through request id, auth (token hash lookup), RBAC, the audit insert (hash chain, one transaction) and an MCP `tools/call` over stdio to a minimal plain-JS MCP server (`bench/children/echo-mcp-server.mjs`); against a minimal Hono proxy that forwards the call to the same upstream MCP server with one MCP SDK client and no auth, policy, audit or database (`bench/children/mcp-proxy.ts`, the yardstick of the quality bar), and a bare Hono handler on `@hono/node-server` that parses the same body and answers the same shape with no upstream. autocannon, one request per connection at a time, latencies from every response.',
    );
    out.push('');
    out.push(
      table(
        ['connections', 'bare req/s', 'proxy req/s', 'toolgate req/s', 'ratio ours/proxy', 'ratio ours/bare', 'proxy p50 / p95 / p99 ms', 'toolgate p50 / p95 / p99 ms', 'server CPU per request bare / proxy / toolgate (µs)', 'errors'],
        r.gate.map((g) => [
          g.connections,
          int(g.bare.rps),
          g.proxy ? int(g.proxy.rps) : '—',
          int(g.ours.rps),
          g.proxy ? `**${f(g.ratioProxy, 3)}**` : '—',
          f(g.ratio, 3),
          g.proxy ? pcts(g.proxy.latencyMs) : '—',
          pcts(g.ours.latencyMs),
          `${int(cpuPerRequestUs(g.bare))} / ${g.proxy ? int(cpuPerRequestUs(g.proxy)) : '—'} / ${int(cpuPerRequestUs(g.ours))}`,
          g.ours.non2xx + g.ours.errors + g.bare.non2xx + g.bare.errors + (g.proxy ? g.proxy.non2xx + g.proxy.errors : 0),
        ]),
      ),
    );
    out.push('');
    out.push(profileSection(`Profile of the gate at ${r.gateProfile?.connections ?? ''} connections`, r.gateProfile));
  }

  if (r.push) {
    out.push('## 2. Push latency with a bot approver');
    out.push('');
    out.push(
      'Callers `POST /tools/write_file/call` (HIGH) and hold the request; a bot on `/ws/approvals` approves each request the moment it is pushed; the gateway runs the tool and answers the caller. **push**: caller\'s `performance.now()` before the POST → bot\'s `performance.now()` on receipt of `approval.requested`. **decision → caller**: bot\'s timestamp before it sends `decide` → caller\'s timestamp when the response (with the tool result) has arrived. Callers and bot share one process and one clock.',
    );
    out.push('');
    out.push(
      table(
        ['waiting callers', 'requests', 'push p50 / p95 / p99 ms', 'decision → caller p50 / p95 / p99 ms', 'end to end p50 / p95 / p99 ms', 'approvals/s', 'failures'],
        r.push.map((x) => [x.concurrency, int(x.requests), pcts(x.pushMs), pcts(x.decisionToCallerMs), pcts(x.endToEndMs), `**${int(x.approvalsPerSecond)}**`, x.failures]),
      ),
    );
    out.push('');
    out.push(profileSection(`Profile of the approval flow at ${r.pushProfile?.connections ?? ''} callers`, r.pushProfile));
  }

  if (r.polling) {
    out.push("## 3. The origin's polling design, side by side");
    out.push('');
    out.push(
      "The same flow on one gateway, one after the other. The origin's waiter polled the database once a second; here the caller uses `Prefer: respond-async` and polls `GET /api/approvals/{id}` at the interval until the request is approved and has run, which is the same wait seen from outside. toolgate's own async callers long-poll (`?wait=60`) and are woken by the same in-process event as held callers.",
    );
    out.push('');
    out.push(
      table(
        ['design', 'callers', 'requests', 'decision → caller p50 / p95 / p99 ms', 'end to end p50 / p99 ms', 'approvals/s'],
        r.polling.map((x) => [x.design, x.concurrency, int(x.requests), pcts(x.decisionToCallerMs), `${ms(x.endToEndMs.p50)} / ${ms(x.endToEndMs.p99)}`, int(x.approvalsPerSecond)]),
      ),
    );
    const pushRow = r.polling[0];
    const oneSecond = r.polling.find((x) => x.design.includes('1 s'));
    if (pushRow && oneSecond) {
      out.push('');
      out.push(`Median decision → caller: **${f(oneSecond.decisionToCallerMs.p50 / pushRow.decisionToCallerMs.p50, 0)}×** faster with the push than with the origin's one-second poll.`);
    }
    out.push('');
  }

  if (r.fallback) {
    out.push('## 4. Fallback: a decision made by another process');
    out.push('');
    out.push(
      'A second process (`bench/children/decider.ts`) opens the same SQLite file and approves through `Requests.decide` (one `createDecider()`, `src/decider.ts`), a random 0..interval after it hears of the request; the gateway holding the caller learns of it only through its polling fallback (the `change-feed` job reading new audit events). Measured on `process.hrtime` (CLOCK_MONOTONIC, one clock for every process on the machine): decider\'s transaction committed → caller\'s response arrived (the tool run included).',
    );
    out.push('');
    out.push(
      table(
        ['`APPROVAL_POLLING_INTERVAL`', 'requests', 'p50 / p95 / p99 ms', 'max ms', 'budget (interval + 100 ms)', 'verdict', 'failures'],
        r.fallback.map((x) => [`${x.pollingIntervalS} s`, x.requests, pcts(x.latencyMs), ms(x.latencyMs.max), `${x.budgetMs} ms`, x.latencyMs.max <= x.budgetMs ? 'met' : 'missed', x.failures]),
      ),
    );
    out.push('');
  }

  if (r.scale) {
    out.push('## 5. Scale: thousands of callers waiting at once');
    out.push('');
    out.push(
      `A fresh gateway per row, one bot approver. **wait**: every caller holds its HTTP request open (one socket each, here and in the gateway; they are opened in batches of 250 so the accept queue never overflows). **async**: requests accepted with 202 (256 at a time) and left pending. Push all: first POST → the approver has the last request. Decide all: the bot sends every \`decide\` at once → the last caller has its response (wait) or the last \`decide.ok\` (async; the approved tools then run in the gateway). RSS is the gateway process's own (\`/proc/<pid>/status\`; peak = VmHWM over the whole row). \`ulimit -n\` is ${m.openFilesLimit.soft} here: 10,000 held callers need 10,000 descriptors in each process.`,
    );
    out.push('');
    out.push(
      table(
        ['mode', 'callers', 'push all (s)', 'push p50 / p95 / p99 ms', 'RSS idle → all waiting (MB)', 'peak RSS (MB)', 'live heap per caller (KB)', 'decide all (s)', 'approvals/s', 'async: all run (s)', 'failures'],
        r.scale.map((s) => [
          s.mode,
          int(s.callers),
          f(s.pushAllS),
          pcts(s.pushMs),
          `${s.idleRssMb} → ${s.rssAllWaitingMb}`,
          `**${s.peakRssMb}**`,
          f(s.liveHeapPerCallerKb, 1),
          f(s.decideAllS),
          int(s.approvalsPerSecond),
          s.executeAllS === null ? '—' : f(s.executeAllS),
          s.failures === 0 ? 0 : `${s.failures}: ${Object.entries(s.failureReasons ?? {}).map(([why, n]) => `${n} × ${why}`).join(', ')}`,
        ]),
      ),
    );
    out.push('');
  }

  if (r.receipts) {
    const x = r.receipts;
    const us = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
    out.push('## Receipts: what binding and signing cost per approval');
    out.push('');
    out.push(
      `One approval (a decision-only request of \`write_file\` with ${x.argumentsBytes} bytes of arguments made, approved by an admin and read back) through the real approval core on a real SQLite file, ${x.rounds} alternating rounds of ${x.approvals} with the receipt signed and without (\`bench/sections/receipts.ts\`). Binding (RFC 8785 canonical form + SHA-256) is computed in both; signing (an Ed25519 JWS with \`jose\`) only with receipts. Below, the same three operations alone.`,
    );
    out.push('');
    out.push(table(['approval', 'p50 / p95 / p99 ms', 'mean ms'], [
      ['with receipt', pcts(x.withReceiptMs), ms(x.withReceiptMs.mean)],
      ['without receipt', pcts(x.withoutReceiptMs), ms(x.withoutReceiptMs.mean)],
    ]));
    out.push('');
    out.push(`Ratio of medians, with / without: **${f(x.ratio, 3)}**.`);
    out.push('');
    out.push(table(['alone', 'p50 µs', 'p99 µs'], [
      ['binding: canonical form + SHA-256', us(x.bindingUs.p50), us(x.bindingUs.p99)],
      ['signing a receipt', us(x.signingUs.p50), us(x.signingUs.p99)],
      ['verifying a receipt offline, arguments included', us(x.verifyingUs.p50), us(x.verifyingUs.p99)],
    ]));
    out.push('');
  }

  if (r.notify) {
    const x = r.notify;
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    out.push('## Notifications: what two receivers, one of them dead, cost the gate');
    out.push('');
    out.push(
      `Two gateway processes side by side, one with no receivers and one with two (\`bench/sections/notify.ts\`): a receiver that answers 200 at once and a dead one (its port refuses connections, so each of its deliveries fails and is retried with backoff). ${x.rounds} alternating rounds, each of LOW calls (autocannon, ${x.gateConnections} connections) and of the approval flow (${x.flowConcurrency} callers of a HIGH tool, a bot approving over the socket, which saturates the gateway's CPU: every delivery the live receiver gets is an HTTP request the gateway makes) and with one caller at a time (the gateway not saturated: the latency a decision sees). Medians of the rounds; ratios are with / without. The live receiver got ${int(x.delivered)} deliveries during the run; each round started once the one before had been delivered (the longest wait for that: ${ms(x.drainMs)} ms).`,
    );
    out.push('');
    out.push(table(['', 'without receivers', 'two receivers, one dead', 'ratio'], [
      ['LOW calls/s', f(med(x.gate.without.map((g) => g.rps)), 0), f(med(x.gate.with.map((g) => g.rps)), 0), f(x.gate.ratio, 3)],
      ['approvals/s', f(med(x.flow.without.map((g) => g.approvalsPerSecond)), 0), f(med(x.flow.with.map((g) => g.approvalsPerSecond)), 0), f(x.flow.approvalsRatio, 3)],
      ['decision → caller p50 ms', ms(med(x.flow.without.map((g) => g.decisionToCallerMs.p50))), ms(med(x.flow.with.map((g) => g.decisionToCallerMs.p50))), f(x.flow.decisionP50Ratio, 3)],
      ['decision → caller p99 ms', ms(med(x.flow.without.map((g) => g.decisionToCallerMs.p99))), ms(med(x.flow.with.map((g) => g.decisionToCallerMs.p99))), f(x.flow.decisionP99Ratio, 3)],
      ['one caller: decision → caller p50 ms', ms(med(x.single.without.map((g) => g.decisionToCallerMs.p50))), ms(med(x.single.with.map((g) => g.decisionToCallerMs.p50))), f(x.single.decisionP50Ratio, 3)],
      ['one caller: decision → caller p99 ms', ms(med(x.single.without.map((g) => g.decisionToCallerMs.p99))), ms(med(x.single.with.map((g) => g.decisionToCallerMs.p99))), f(x.single.decisionP99Ratio, 3)],
    ]));
    out.push('');
  }

  if (r.growth) {
    out.push('## 6. Growth: costs against history');
    out.push('');
    out.push(
      `The same gate (LOW call, 10 connections) and \`GET /api/approvals/pending?limit=50\` (admin, 10 connections) on one database file whose audit log grows between rows (history bulk-inserted by \`bench/lib/history.ts\`: LOW calls and decided HIGH requests), with ${int(r.growth[0]?.pendingRequests ?? 0)} pending requests throughout. A fresh gateway process per row.`,
    );
    out.push('');
    out.push(
      table(
        ['audit rows', 'decided requests', 'pending', 'gate req/s', 'gate p50 / p95 / p99 ms', 'pending list req/s', 'pending list p50 / p95 / p99 ms'],
        r.growth.map((g) => [int(g.auditRows), int(g.decidedRequests), int(g.pendingRequests), int(g.gate.rps), pcts(g.gate.latencyMs), int(g.pendingList.rps), pcts(g.pendingList.latencyMs)]),
      ),
    );
    const first = r.growth[0];
    const last = r.growth.at(-1);
    if (first && last && first !== last) {
      out.push('');
      out.push(
        `From ${int(first.auditRows)} to ${int(last.auditRows)} audit rows (${f(last.auditRows / first.auditRows, 0)}× the history): gate throughput ×${f(last.gate.rps / first.gate.rps)}, pending-list throughput ×${f(last.pendingList.rps / first.pendingList.rps)}. Every query on these paths is an index seek (the audit chain reads the last row by primary key; the pending list walks \`(status, requested_at)\`), so the history does not enter the cost.`,
      );
    }
    out.push('');
  }

  if (r.statements?.length) {
    out.push('## 7. Statements per call');
    out.push(
      '',
      'The SQL statements one call costs, counted in process by wrapping the checkout\'s own better-sqlite3 (`bench/children/count-statements.ts`), one call at a time with the background jobs paced at 60 s: a LOW call, and one approval (a HIGH call in wait mode, approved over HTTP, run, answered; the count includes the approver listing the pending request once). Under load, group commit (`SQLITE_GROUP_COMMIT_MAX`) also folds the BEGIN and COMMIT of transactions that queue up into one, and adds a SAVEPOINT and RELEASE for each after the first.',
      '',
    );
    const kinds = ['SELECT', 'INSERT', 'UPDATE', 'BEGIN', 'COMMIT', 'SAVEPOINT', 'RELEASE'];
    const rows: (string | number)[][] = [];
    for (const s of r.statements) {
      for (const [what, c] of [['LOW call', s.low], ['approval', s.approval]] as const) {
        rows.push([`\`${s.commit.split(' ')[0]}\` ${what}`, String(c.total), ...kinds.map((k) => String(c.byKind[k] ?? 0))]);
      }
    }
    out.push(table(['checkout, call', 'statements', ...kinds], rows), '');
  }

  if (r.baseline) {
    const b = r.baseline;
    out.push('## 8. Against a baseline commit, side by side');
    out.push('');
    out.push(
      `This checkout against \`${b.baseline.commit}\` (built from \`${b.baseline.dir}\` with its own \`tsc\`), both gateways running at once in their own child processes on their own databases, each measured twice in ABBA order (ours, baseline, baseline, ours). The same load and the same bot approver drive both. **ratio** is mean(ours) / mean(baseline): above 1 is faster. **noise** is the larger gap between one build's own two runs: a ratio within it is no evidence of a change. **CPU ratio** is the baseline's gateway CPU time per call over ours (user + system of the gateway process alone, /proc/<pid>/stat): above 1, a call costs ours less. When other work competes for the cores, throughput swings far more than what one call costs, so on a busy machine the CPU ratio is the steadier reading.`,
    );
    out.push('');
    out.push(
      table(
        ['measure', 'ours (two runs)', 'baseline (two runs)', 'ratio', 'noise', 'ours p99 ms', 'baseline p99 ms', 'gateway CPU µs per call, ours / baseline', 'CPU ratio'],
        [
          ...b.gate.map((g) => [
            `gate, LOW call, ${g.connections} connections (req/s)`,
            g.ours.map((x) => int(x.rps)).join(' / '),
            g.baseline.map((x) => int(x.rps)).join(' / '),
            `**${f(g.ratio, 3)}**`,
            `${f(g.noise * 100, 0)} %`,
            g.ours.map((x) => ms(x.latencyMs.p99)).join(' / '),
            g.baseline.map((x) => ms(x.latencyMs.p99)).join(' / '),
            cpuPair(g.cpu),
            g.cpu ? `**${f(g.cpu.ratio, 2)}**` : '—',
          ]),
          ...b.flow.map((x) => [
            `approval flow, ${x.concurrency} waiting callers (approvals/s; p99: decision → caller)`,
            x.ours.map((y) => int(y.approvalsPerSecond)).join(' / '),
            x.baseline.map((y) => int(y.approvalsPerSecond)).join(' / '),
            `**${f(x.ratio, 3)}**`,
            `${f(x.noise * 100, 0)} %`,
            x.ours.map((y) => ms(y.decisionToCallerMs.p99)).join(' / '),
            x.baseline.map((y) => ms(y.decisionToCallerMs.p99)).join(' / '),
            cpuPair(x.cpu),
            x.cpu ? `**${f(x.cpu.ratio, 2)}**` : '—',
          ]),
        ],
      ),
    );
    out.push('');
  }

  if (r.postgres) {
    const pg = r.postgres;
    out.push('## 9. PostgreSQL: one gateway beside SQLite, and two gateways on one database');
    out.push(
      '',
      `A throwaway PostgreSQL ${pg.server.version} on this machine (fsync ${pg.server.fsync}, synchronous_commit ${pg.server.synchronousCommit}: PostgreSQL's default durability; SQLite runs in WAL mode with synchronous=NORMAL), reached over loopback TCP; a new database for every case. The gateways are child processes with the default pool (\`DATABASE_POOL_SIZE\` 10); with two, both run from one data folder (one signing key), the first migrates and seeds, and the load is split evenly between them. Every LOW call writes one audit event in its own transaction, so LOW calls per second are audited writes per second. On two cores the PostgreSQL server, both gateways, their upstream MCP servers and the load generator share the CPU: a second instance here adds no cores, so the two-instance figure shows that the instances do not serialise on one another (no cluster-wide lock on an audited write), not what a second machine would add.`,
      '',
      table(
        ['LOW call (req/s)', 'SQLite', 'PostgreSQL', 'ratio PostgreSQL / SQLite', 'PostgreSQL p50 / p95 / p99 ms', 'SQLite p99 ms', 'gateway CPU µs per call, PostgreSQL / SQLite'],
        pg.gate.map((g) => [`${g.connections} connections`, int(g.sqlite.rps), int(g.postgres.rps), `**${f(g.ratio, 3)}**`, pcts(g.postgres.latencyMs), ms(g.sqlite.latencyMs.p99), `${int(cpuPerRequestUs(g.postgres))} / ${int(cpuPerRequestUs(g.sqlite))}`]),
      ),
      '',
      table(
        [`audited writes per second (${pg.auditedWrites.connections} connections)`, 'per second', 'gateway CPU µs per call'],
        [
          ['SQLite, one gateway', int(pg.auditedWrites.sqlite), '—'],
          ['PostgreSQL, one gateway', int(pg.auditedWrites.postgresOne), int(pg.auditedWrites.cpuPerCallUs.one)],
          [`PostgreSQL, two gateways at once (${pg.auditedWrites.postgresTwoEach.map((x) => int(x)).join(' + ')})`, `${int(pg.auditedWrites.postgresTwo)} (**×${f(pg.auditedWrites.scaling, 2)}** one gateway)`, int(pg.auditedWrites.cpuPerCallUs.two)],
        ],
      ),
      '',
      'The approval flow: callers in wait mode make HIGH calls; a bot approver decides each as it is pushed. Across two instances, the callers are on gateway A and the approver on gateway B: the request reaches B by a NOTIFY after A\'s commit, and the decision reaches A the same way.',
      '',
      table(
        ['where', 'callers', 'approvals', 'failed', 'push p50 / p95 / p99 ms', 'decision → caller p50 / p95 / p99 ms', 'approvals/s'],
        pg.flow.map((x) => [x.where, String(x.concurrency), int(x.requests), String(x.failures), pcts(x.pushMs), pcts(x.decisionToCallerMs), int(x.approvalsPerSecond)]),
      ),
      '',
    );
    if (pg.scale.length) {
      out.push(
        'Callers waiting at once in wait mode, half on each of two gateways on one database; the approver is connected to the first and approves them all once every request has reached it. Memory is the larger of the two gateway processes.',
        '',
        table(
          ['callers', 'failed', 'push all (s)', 'push p99 ms', 'RSS all waiting (MB)', 'peak RSS (MB)', 'live heap per caller (KiB)', 'decide all (s)', 'approvals/s'],
          pg.scale.map((x) => [int(x.callers), String(x.failures), f(x.pushAllS), ms(x.pushMs.p99), f(x.rssAllWaitingMb, 0), f(x.peakRssMb, 0), f(x.liveHeapPerCallerKb, 1), f(x.decideAllS), int(x.approvalsPerSecond)]),
        ),
        '',
      );
    }
  }

  const errors = Object.entries(r.errors);
  if (errors.length) {
    out.push('## Errors in this run');
    out.push('');
    for (const [section, message] of errors) out.push(`- **${section}**: \`${message.split('\n')[0]}\``);
    out.push('');
  }
  out.push(analysis(r));
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trim()}\n`;
}

const topOf = (p: ProfileSummary | null | undefined, n = 4) =>
  p ? p.top.slice(0, n).map((e) => `\`${e.name}\` ${f(e.selfPct, 1)} %`).join(', ') : 'no profile';
const shareOf = (p: ProfileSummary | null | undefined, test: (name: string) => boolean) =>
  p ? p.top.filter((e) => test(e.name)).reduce((sum, e) => sum + e.selfPct, 0) : NaN;

/** What the numbers mean and what limits them, from this run's own numbers and profiles. */
function analysis(r: BenchResults): string {
  const out: string[] = ['## Reading the results', ''];
  const g = r.gate?.find((x) => x.connections === 50) ?? r.gate?.at(-1);
  if (g) {
    const commit = shareOf(r.gateProfile?.profile, (n) => n.includes('sqliteTransaction') || n.includes('runBatch'));
    out.push(
      `**Gate.** A gated LOW call costs the server ${int(cpuPerRequestUs(g.ours))} µs of CPU against ${g.proxy ? `${int(cpuPerRequestUs(g.proxy))} µs for the minimal proxy to the same upstream and ` : ''}${int(cpuPerRequestUs(g.bare))} µs for the bare handler. Beyond the proxy, the gate hashes the token and reads the user (a SQLite read), appends a hash-chained audit event in a write transaction (transactions that queue up share one COMMIT: group commit, \`SQLITE_GROUP_COMMIT_MAX\`; \`run ← sqliteTransaction\` / \`runBatch\` is ${f(commit, 1)} % of the gateway's busy time), and runs its checks (request context with id, metrics and access log; rate limit; body limit; auth; RBAC). Top self time in the profile: ${topOf(r.gateProfile?.profile)}.`,
    );
    out.push('');
  }
  const p100 = r.push?.find((x) => x.concurrency === 100);
  const p1 = r.push?.find((x) => x.concurrency === 1);
  if (p1 && p100) {
    const commit = shareOf(r.pushProfile?.profile, (n) => n.includes('sqliteTransaction') || n.includes('runBatch'));
    out.push(
      `**Push and decision latency.** With one caller the path is idle and the numbers are the real latency of the machinery: push p99 ${ms(p1.pushMs.p99)} ms, decision → caller p99 ${ms(p1.decisionToCallerMs.p99)} ms. With 100 callers the gateway is saturated (${int(p100.approvalsPerSecond)} approvals/s) and both intervals are mostly queueing: by Little's law 100 callers at that rate spend ${ms((100 / p100.approvalsPerSecond) * 1000)} ms per round trip, and a decision waits behind the requests already in the event loop. An approval costs three write transactions (create; decide, which also claims the run when the caller waits in this process; record the result), each with its audit events (group commit folds those that queue up into one COMMIT); their commits are ${f(commit, 1)} % of the busy time in the flow's profile (top: ${topOf(r.pushProfile?.profile)}). The CPU per approval, not the push mechanism, sets the ceiling; the bot, the callers and the load generator share the second core.`,
    );
    out.push('');
  }
  const scale10k = (r.scale ?? []).filter((s) => s.callers === (r.scale ?? []).reduce((m, x) => Math.max(m, x.callers), 0));
  const wait = scale10k.find((s) => s.mode === 'wait');
  if (wait) {
    out.push(
      `**Memory at scale.** The gateway starts at ${wait.idleRssMb} MB RSS (Node, the compiled gateway, SQLite's cache, the MCP client; under the tsx loader that \`npm start\` uses in a checkout it is about 50 MB more). A caller held in wait mode adds ${f(wait.liveHeapPerCallerKb, 1)} KB of live heap (after a full GC), async mode ${f(scale10k.find((s) => s.mode === 'async')?.liveHeapPerCallerKb ?? NaN, 1)} KB. A held request keeps alive Node's socket, parser, IncomingMessage/ServerResponse and Hono context, plus one suspended async frame per middleware between the socket and the gate. An early heap snapshot (1,000 held callers, taken by hand with \`v8.writeHeapSnapshot\`, which the gateway child answers to over IPC) put about 60 % of a held request in those frames when there were nine middleware layers and a web \`Request\` per call; folding the request id, in-flight count, shutdown check, metrics and access log into one middleware, checking Content-Length without building the \`Request\`, and creating the abort signal only for waiting calls took the live heap per held caller from 34.6 KB to about 20 KB (same quick run before and after). The gate's own state per waiter (a bus watcher, an expiry timer, the approval view) is small. Peak RSS adds the burst when every caller is answered at once (${int(wait.callers)} tool calls and responses in flight).`,
    );
    out.push('');
  }
  const fb = r.fallback ?? [];
  if (fb.length) {
    out.push(
      `**Fallback.** A decision made elsewhere waits for the next run of the change feed (uniform over the interval) plus the tool run; the measured maxima (${fb.map((x) => `${ms(x.latencyMs.max)} ms at ${x.pollingIntervalS} s`).join(', ')}) stay inside interval + 100 ms.`,
    );
    out.push('');
  }
  const grow = r.growth ?? [];
  if (grow.length > 1) {
    out.push(
      `**Growth.** Throughput at ${int(grow.at(-1)!.auditRows)} audit rows is within the run-to-run noise of the smallest history: appending reads the last event by primary key, the pending list walks an index, the token lookup is a unique-index seek. The bench setup writes history rows with a well-formed but not verifiable hash chain; \`toolgate audit verify\` is not part of the measurement.`,
    );
    out.push('');
  }
  out.push(
    '**Noise.** Two cores carry the server under test, its upstream, the load generator and whatever else the machine runs (see the load average above). Absolute rates move by 2× between runs on this machine; ratios taken within one run (ours/bare, push/poll) are the numbers to quote.',
  );
  out.push('');
  return out.join('\n');
}
