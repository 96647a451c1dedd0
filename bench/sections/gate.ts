import autocannon from 'autocannon';
import { summarize, type Summary } from '../lib/stats.js';

export interface LoadResult {
  connections: number;
  durationS: number;
  requests: number;
  rps: number;
  non2xx: number;
  errors: number;
  latencyMs: Summary;
  /** Server CPU used during the run, as a share of one core (1.0 = one core busy all the time). */
  serverCpuCores: number;
}

export interface LoadTarget {
  url: string;
  path: string;
  method: 'GET' | 'POST';
  token?: string | undefined;
  body?: unknown;
  cpuMs(): number;
}

/** One autocannon run from this process against a server in a child process; every response time is kept. */
export async function load(target: LoadTarget, connections: number, durationS: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const cpuBefore = target.cpuMs();
  const started = performance.now();
  const instance = autocannon({
    url: `${target.url}${target.path}`,
    method: target.method,
    connections,
    duration: durationS,
    pipelining: 1,
    headers: {
      ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
      ...(target.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(target.body !== undefined ? { body: JSON.stringify(target.body) } : {}),
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
  const result = await instance;
  const elapsedS = (performance.now() - started) / 1000;
  const ok = result['2xx'];
  return {
    connections,
    durationS: result.duration,
    requests: ok,
    rps: ok / result.duration,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    latencyMs: summarize(latencies),
    serverCpuCores: (target.cpuMs() - cpuBefore) / 1000 / elapsedS,
  };
}

export const ECHO_BODY = { arguments: { message: 'hello from the benchmark' } };
