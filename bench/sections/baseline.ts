import { join } from 'node:path';
import { BENCH_ENV, startChild, tempDir, type Child } from '../lib/procs.js';
import { ECHO_BODY, load, type LoadResult } from './gate.js';
import { approvalFlow, type FlowResult } from './push.js';

/** This checkout against another one (`--baseline=DIR`), measured side by side in one run. */
export interface BaselineResult {
  /** The baseline checkout: its path and commit. */
  baseline: { dir: string; commit: string };
  /** Each build is measured twice; `ratio` is mean(ours) / mean(baseline); `noise` the larger relative gap between one build's two runs. */
  gate: { connections: number; ours: [LoadResult, LoadResult]; baseline: [LoadResult, LoadResult]; ratio: number; noise: number; cpu: CpuPerCall }[];
  flow: { concurrency: number; ours: [FlowResult, FlowResult]; baseline: [FlowResult, FlowResult]; ratio: number; noise: number; cpu: CpuPerCall }[];
}

/**
 * The gateway process's own CPU time (user + system) per call, in µs, for each of the two runs
 * of each build, and `ratio` = mean(baseline) / mean(ours): above 1, ours costs less. Another
 * process competing for the cores lowers throughput far more than it changes what one call costs.
 */
export interface CpuPerCall {
  ours: [number, number];
  baseline: [number, number];
  ratio: number;
}

/** The larger of |a1 − a2| / mean(a) and the same for b: how far one build disagrees with itself. */
function spread(a: number[], b: number[]): number {
  const gap = ([x, y]: number[]) => Math.abs(x! - y!) / ((x! + y!) / 2);
  return Math.max(gap(a), gap(b));
}

const echoTarget = (child: Child) => ({ url: child.url, path: '/tools/echo/call', method: 'POST' as const, token: child.tokens.dev, body: ECHO_BODY, cpuMs: child.cpuMs });

/**
 * Runs both gateways at once (each in its own child process on its own database) and measures
 * each twice in ABBA order, so that drift on a noisy machine falls on both.
 * The ratio is ours / baseline: above 1 is faster than the baseline.
 */
export async function againstBaseline(
  baseline: { dir: string; commit: string },
  options: { connections: number[]; durationS: number; warmupS: number; flowTotal: number; flowConcurrency: number[]; deadlineMs: number },
): Promise<BaselineResult> {
  const ourDir = tempDir();
  const theirDir = tempDir();
  let ours: Child | null = null;
  let theirs: Child | null = null;
  try {
    ours = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: join(ourDir.path, 'toolgate.db') });
    theirs = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: join(theirDir.path, 'toolgate.db') }, { root: baseline.dir });
    await load(echoTarget(ours), 10, options.warmupS);
    await load(echoTarget(theirs), 10, options.warmupS);
    const result: BaselineResult = { baseline, gate: [], flow: [] };
    // ABBA: ours, baseline, baseline, ours. A drift that is linear in time falls equally on both,
    // and the two runs of each build show the noise of this sitting.
    const abba = async <T extends { requests: number }>(measure: (gw: Child) => Promise<T>): Promise<{ ours: [T, T]; baseline: [T, T]; cpu: CpuPerCall }> => {
      const withCpu = async (gw: Child): Promise<[T, number]> => {
        const before = gw.cpuMs();
        const result = await measure(gw);
        return [result, ((gw.cpuMs() - before) * 1000) / Math.max(1, result.requests)];
      };
      const [o1, oc1] = await withCpu(ours!);
      const [t1, tc1] = await withCpu(theirs!);
      const [t2, tc2] = await withCpu(theirs!);
      const [o2, oc2] = await withCpu(ours!);
      return { ours: [o1, o2], baseline: [t1, t2], cpu: { ours: [oc1, oc2], baseline: [tc1, tc2], ratio: (tc1 + tc2) / (oc1 + oc2) } };
    };
    for (const connections of options.connections) {
      const m = await abba((gw) => load(echoTarget(gw), connections, options.durationS));
      const rate = (pair: [LoadResult, LoadResult]) => (pair[0].rps + pair[1].rps) / 2;
      result.gate.push({ connections, ours: m.ours, baseline: m.baseline, ratio: rate(m.ours) / rate(m.baseline), noise: spread(m.ours.map((x) => x.rps), m.baseline.map((x) => x.rps)), cpu: m.cpu });
    }
    for (const concurrency of options.flowConcurrency) {
      const m = await abba((gw) => approvalFlow(gw, { total: options.flowTotal, concurrency, style: { kind: 'wait' }, warmup: Math.min(200, options.flowTotal), deadlineMs: options.deadlineMs }));
      const rate = (pair: [FlowResult, FlowResult]) => (pair[0].approvalsPerSecond + pair[1].approvalsPerSecond) / 2;
      result.flow.push({
        concurrency,
        ours: m.ours,
        baseline: m.baseline,
        ratio: rate(m.ours) / rate(m.baseline),
        noise: spread(m.ours.map((x) => x.approvalsPerSecond), m.baseline.map((x) => x.approvalsPerSecond)),
        cpu: m.cpu,
      });
    }
    return result;
  } finally {
    await ours?.stop();
    await theirs?.stop();
    ourDir.remove();
    theirDir.remove();
  }
}
