/**
 * `npm run bench [-- --quick] [-- --only=gate,push,polling,fallback,scale,growth,statements,receipts,postgres,baseline] [-- --baseline=DIR]`
 *
 * `--quick` runs the gate, the approval flow and the statements per call, shorter: under a minute.
 *
 * `--baseline=DIR` also measures this checkout against another one (a clone at an older commit,
 * with `npm ci` run in it) side by side: the gate and the approval flow, ratios in one run, and the
 * statements one call costs in each.
 *
 * Starts its own gateways (child processes, temporary databases, 127.0.0.1 only), measures, and
 * writes bench/results/<date>.json and docs/benchmarks.md. Every loop is bounded in count and time.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/machine.js';
import { buildChildren, ROOT, withGateway } from './lib/procs.js';
import { renderReport, verdicts, type BenchResults } from './lib/report.js';
import { fallbackLatency } from './sections/fallback.js';
import { gateOverhead, profileGate, profiled } from './sections/gate-suite.js';
import { growth } from './sections/growth.js';
import { againstBaseline } from './sections/baseline.js';
import { approvalFlow } from './sections/push.js';
import { scaleCase } from './sections/scale.js';
import { countStatements } from './sections/statements.js';
import { receiptsCost } from './sections/receipts.js';
import { postgresSection } from './sections/postgres.js';
import { notifyCost } from './sections/notify.js';

const SECTIONS = ['gate', 'push', 'polling', 'fallback', 'scale', 'growth', 'statements', 'receipts', 'postgres', 'notify', 'baseline'] as const;
type Section = (typeof SECTIONS)[number];

const FULL = {
  gate: { connections: [1, 10, 50], durationS: 8, warmupS: 2, profileS: 6 },
  push: { c1: 5000, c100: 5000, warmup: 300, profile: 3000, deadlineMs: 120_000 },
  polling: { longPoll: 2000, every100ms: 1000, every1s: 300, concurrency: 100, deadlineMs: 60_000 },
  fallback: { at100ms: 100, at1s: 40, concurrency: 10, deadlineMs: 60_000 },
  scale: { callers: [1000, 5000, 10_000], timeoutMs: 120_000 },
  growth: { sizes: [10_000, 100_000, 1_000_000], pending: 10_000, connections: 10, durationS: 5, warmupS: 1 },
  baseline: { connections: [10, 50], durationS: 8, warmupS: 2, flowTotal: 3000, flowConcurrency: [1, 100], deadlineMs: 120_000 },
  receipts: { approvals: 500, rounds: 4, micro: 5000 },
  postgres: { connections: [10, 50], durationS: 8, warmupS: 2, flow: { c1: 2000, c100: 3000, warmup: 200, deadlineMs: 120_000 }, scale: { callers: [10_000], timeoutMs: 180_000 } },
  notify: { rounds: 4, gateConnections: 50, gateDurationS: 5, flowTotal: 2000, flowConcurrency: 50, singleTotal: 500, deadlineMs: 120_000 },
};

/**
 * `--quick`, a developer's loop of under a minute: the sections a change to the request path
 * moves (the gate, the approval flow, the statements per call), shorter. `--only` picks others,
 * at these sizes too.
 */
const QUICK_SECTIONS: readonly Section[] = ['gate', 'push', 'statements'];
const QUICK: typeof FULL = {
  gate: { connections: [10, 50], durationS: 2, warmupS: 1, profileS: 2 },
  push: { c1: 200, c100: 500, warmup: 50, profile: 300, deadlineMs: 30_000 },
  polling: { longPoll: 300, every100ms: 200, every1s: 100, concurrency: 100, deadlineMs: 30_000 },
  fallback: { at100ms: 30, at1s: 10, concurrency: 10, deadlineMs: 30_000 },
  scale: { callers: [1000, 2000], timeoutMs: 60_000 },
  growth: { sizes: [10_000, 100_000], pending: 10_000, connections: 10, durationS: 2, warmupS: 1 },
  baseline: { connections: [50], durationS: 3, warmupS: 1, flowTotal: 1000, flowConcurrency: [100], deadlineMs: 60_000 },
  receipts: { approvals: 150, rounds: 2, micro: 1000 },
  postgres: { connections: [50], durationS: 2, warmupS: 1, flow: { c1: 200, c100: 500, warmup: 50, deadlineMs: 30_000 }, scale: { callers: [1000], timeoutMs: 60_000 } },
  notify: { rounds: 2, gateConnections: 50, gateDurationS: 2, flowTotal: 400, flowConcurrency: 50, singleTotal: 150, deadlineMs: 60_000 },
};

/** The commit a checkout is at (short hash and subject), to name the baseline in the report. */
function describeCommit(dir: string): string {
  try {
    return execFileSync('git', ['-C', dir, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

function log(message: string) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function main() {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, baseline: { type: 'string' }, 'no-docs': { type: 'boolean', default: false } } });
  const quick = values.quick ?? false;
  const plan = quick ? QUICK : FULL;
  const only = new Set((values.only?.split(',').map((s) => s.trim()) ?? (quick ? QUICK_SECTIONS : SECTIONS)) as Section[]);
  for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`unknown section "${s}"; pick from ${SECTIONS.join(', ')}`);
  const baselineDir = values.baseline ? resolve(values.baseline) : undefined;
  if (!baselineDir && values.only?.includes('baseline')) throw new Error('the baseline section needs --baseline=DIR (a checkout of the commit to compare with, after npm ci)');
  // With --baseline, the side-by-side section runs too, unless --only names the sections to run.
  if (!baselineDir) only.delete('baseline');
  else if (!values.only) only.add('baseline');

  log('compiling the servers under test (tsc → bench/.build)');
  buildChildren();
  const baseline = baselineDir ? { dir: baselineDir, commit: describeCommit(baselineDir) } : undefined;
  if (baseline) {
    log(`compiling the baseline ${baseline.commit} in ${baseline.dir}`);
    buildChildren(baseline.dir);
  }
  const started = Date.now();
  const machine = describeMachine();
  const results: BenchResults = {
    startedAt: new Date(started).toISOString(),
    command: `npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick,
    machine,
    errors: {},
  };
  // 10,000 held callers need 10,000 sockets here and as many in the gateway, plus a margin.
  const fdBudget = Math.floor((machine.openFilesLimit.soft - 500) / 1);
  if (Number.isFinite(fdBudget) && plan.scale.callers.some((n) => n > fdBudget)) {
    results.errors.scale = `ulimit -n is ${machine.openFilesLimit.soft}: too low for ${Math.max(...plan.scale.callers)} held sockets per process; raise it (ulimit -n 20000)`;
    plan.scale.callers = plan.scale.callers.filter((n) => n <= fdBudget);
  }

  const step = async (section: Section, fn: () => Promise<void>) => {
    if (!only.has(section)) return;
    const t0 = Date.now();
    log(`${section}: start`);
    try {
      await fn();
    } catch (err) {
      results.errors[section] = (err as Error).stack ?? String(err);
      log(`${section}: FAILED ${(err as Error).message}`);
    }
    log(`${section}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };

  await step('gate', async () => {
    results.gate = await gateOverhead(plan.gate);
    for (const r of results.gate) log(`  c=${r.connections} bare ${r.bare.rps.toFixed(0)}/s proxy ${r.proxy.rps.toFixed(0)}/s ours ${r.ours.rps.toFixed(0)}/s ratio ours/proxy ${r.ratioProxy.toFixed(3)} p99 ${r.ours.latencyMs.p99.toFixed(1)} ms`);
    const top = plan.gate.connections[plan.gate.connections.length - 1]!;
    results.gateProfile = { connections: top, ...(await profileGate({ connections: top, durationS: plan.gate.profileS, warmupS: plan.gate.warmupS })) };
  });

  await step('push', async () => {
    await withGateway({}, async (gw) => {
      const p = plan.push;
      const c1 = await approvalFlow(gw, { total: p.c1, concurrency: 1, style: { kind: 'wait' }, warmup: p.warmup, deadlineMs: p.deadlineMs });
      log(`  c=1 push p99 ${c1.pushMs.p99.toFixed(2)} ms, decision→caller p99 ${c1.decisionToCallerMs.p99.toFixed(2)} ms, ${c1.approvalsPerSecond.toFixed(0)}/s`);
      const c100 = await approvalFlow(gw, { total: p.c100, concurrency: 100, style: { kind: 'wait' }, warmup: p.warmup, deadlineMs: p.deadlineMs });
      log(`  c=100 push p99 ${c100.pushMs.p99.toFixed(2)} ms, decision→caller p99 ${c100.decisionToCallerMs.p99.toFixed(2)} ms, ${c100.approvalsPerSecond.toFixed(0)}/s`);
      results.push = [c1, c100];
      const prof = await profiled(gw, () => approvalFlow(gw, { total: p.profile, concurrency: 100, style: { kind: 'wait' }, deadlineMs: p.deadlineMs }));
      results.pushProfile = { connections: 100, result: prof.result, profile: prof.profile };
    });
  });

  await step('polling', async () => {
    await withGateway({}, async (gw) => {
      const p = plan.polling;
      const rows = [];
      rows.push(await approvalFlow(gw, { total: p.longPoll, concurrency: p.concurrency, style: { kind: 'wait' }, warmup: 100, deadlineMs: p.deadlineMs }));
      rows.push(await approvalFlow(gw, { total: p.longPoll, concurrency: p.concurrency, style: { kind: 'long-poll' }, warmup: 100, deadlineMs: p.deadlineMs }));
      rows.push(await approvalFlow(gw, { total: p.every100ms, concurrency: p.concurrency, style: { kind: 'poll', intervalMs: 100 }, deadlineMs: p.deadlineMs }));
      rows.push(await approvalFlow(gw, { total: p.every1s, concurrency: p.concurrency, style: { kind: 'poll', intervalMs: 1000 }, deadlineMs: p.deadlineMs }));
      for (const r of rows) log(`  ${r.design}: decision→caller p50 ${r.decisionToCallerMs.p50.toFixed(1)} ms p99 ${r.decisionToCallerMs.p99.toFixed(1)} ms`);
      results.polling = rows;
    });
  });

  await step('fallback', async () => {
    const p = plan.fallback;
    results.fallback = [];
    for (const [pollingIntervalS, total] of [[0.1, p.at100ms], [1, p.at1s]] as const) {
      const r = await fallbackLatency({ pollingIntervalS, total, concurrency: p.concurrency, deadlineMs: p.deadlineMs });
      log(`  interval ${pollingIntervalS} s: p50 ${r.latencyMs.p50.toFixed(1)} max ${r.latencyMs.max.toFixed(1)} ms (budget ${r.budgetMs})`);
      results.fallback.push(r);
    }
  });

  await step('scale', async () => {
    results.scale = [];
    for (const mode of ['async', 'wait'] as const) {
      for (const callers of plan.scale.callers) {
        const r = await scaleCase(mode, callers, { timeoutMs: plan.scale.timeoutMs });
        log(`  ${mode} ${callers}: push all ${r.pushAllS.toFixed(2)} s, peak RSS ${r.peakRssMb} MB, decide all ${r.decideAllS.toFixed(2)} s (${r.approvalsPerSecond.toFixed(0)}/s), failures ${r.failures}`);
        results.scale.push(r);
      }
    }
  });

  await step('growth', async () => {
    results.growth = await growth(plan.growth);
    for (const g of results.growth) log(`  ${g.auditRows} audit rows: gate ${g.gate.rps.toFixed(0)}/s p99 ${g.gate.latencyMs.p99.toFixed(1)} ms; pending list ${g.pendingList.rps.toFixed(0)}/s p99 ${g.pendingList.latencyMs.p99.toFixed(1)} ms`);
  });

  await step('statements', async () => {
    results.statements = [countStatements(ROOT, describeCommit(ROOT))];
    if (baseline) results.statements.push(countStatements(baseline.dir, baseline.commit));
    for (const s of results.statements) log(`  ${s.commit.split(' ')[0]}: LOW call ${s.low.total} statements, approval ${s.approval.total}`);
  });

  await step('receipts', async () => {
    results.receipts = await receiptsCost(plan.receipts);
    const x = results.receipts;
    log(`  per approval: ${x.withReceiptMs.p50.toFixed(3)} ms with a receipt, ${x.withoutReceiptMs.p50.toFixed(3)} ms without (ratio ${x.ratio.toFixed(3)}); binding ${x.bindingUs.p50.toFixed(1)} µs, signing ${x.signingUs.p50.toFixed(1)} µs`);
  });

  await step('notify', async () => {
    const x = (results.notify = await notifyCost(plan.notify));
    log(`  with two receivers (one dead) / without: gate ${x.gate.ratio.toFixed(3)}, approvals ${x.flow.approvalsRatio.toFixed(3)}, decision→caller p50 ${x.flow.decisionP50Ratio.toFixed(3)} p99 ${x.flow.decisionP99Ratio.toFixed(3)}; one caller: decision→caller p50 ${x.single.decisionP50Ratio.toFixed(3)} p99 ${x.single.decisionP99Ratio.toFixed(3)}; ${x.delivered} delivered`);
  });

  await step('postgres', async () => {
    results.postgres = await postgresSection(plan.postgres, log);
  });

  await step('baseline', async () => {
    results.baseline = await againstBaseline(baseline!, plan.baseline);
    for (const g of results.baseline.gate) log(`  gate c=${g.connections}: ratio ours/baseline ${g.ratio.toFixed(3)}, noise ${(g.noise * 100).toFixed(0)} %`);
    for (const x of results.baseline.flow) log(`  flow c=${x.concurrency}: ratio ours/baseline ${x.ratio.toFixed(3)}, noise ${(x.noise * 100).toFixed(0)} %`);
  });

  results.durationS = (Date.now() - started) / 1000;
  results.loadAverageAtEnd = (await import('node:os')).loadavg().map((v) => Math.round(v * 100) / 100);
  results.verdicts = verdicts(results);

  const date = results.startedAt.slice(0, 10);
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const jsonPath = join(resultsDir, `${date}${quick ? '-quick' : ''}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  const report = renderReport(results, `bench/results/${date}${quick ? '-quick' : ''}.json`);
  if (!values['no-docs']) {
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), report);
  }
  process.stdout.write(`${report}\n`);
  log(`wrote ${jsonPath}${values['no-docs'] ? '' : ' and docs/benchmarks.md'} in ${results.durationS.toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
