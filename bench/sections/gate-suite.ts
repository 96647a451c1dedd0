import { startChild, BENCH_ENV, tempDir, type Child } from '../lib/procs.js';
import { summarizeProfile, type ProfileSummary } from '../lib/profile.js';
import { ECHO_BODY, load, type LoadResult } from './gate.js';
import { join } from 'node:path';

export interface GateRow {
  connections: number;
  bare: LoadResult;
  /** A minimal Hono proxy to the same upstream MCP server (bench/children/mcp-proxy.ts). */
  proxy: LoadResult;
  ours: LoadResult;
  /** ours / bare */
  ratio: number;
  /** ours / proxy: the quality bar's ratio */
  ratioProxy: number;
}

const target = (child: Child, token: string) => ({ url: child.url, path: '/tools/echo/call', method: 'POST' as const, token, body: ECHO_BODY, cpuMs: child.cpuMs });

/**
 * The gate against the bare handler and against a minimal proxy to the same upstream, all three
 * in child processes, measured one after the other at each connection count (the order rotates,
 * so drift from a noisy machine falls on each).
 */
export async function gateOverhead(options: { connections: number[]; durationS: number; warmupS: number }): Promise<GateRow[]> {
  const dir = tempDir();
  const children: Child[] = [];
  try {
    const bare = await startChild('bare-hono', {});
    children.push(bare);
    const proxy = await startChild('mcp-proxy', {});
    children.push(proxy);
    const ours = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: join(dir.path, 'toolgate.db') });
    children.push(ours);
    const targets = { bare: target(bare, ''), proxy: target(proxy, ''), ours: target(ours, ours.tokens.dev) };
    for (const t of Object.values(targets)) await load(t, 10, options.warmupS);
    const rows: GateRow[] = [];
    const kinds = ['bare', 'proxy', 'ours'] as const;
    for (const [i, connections] of options.connections.entries()) {
      const measured: Partial<Record<(typeof kinds)[number], LoadResult>> = {};
      for (let k = 0; k < kinds.length; k++) {
        const kind = kinds[(i + k) % kinds.length]!;
        measured[kind] = await load(targets[kind], connections, options.durationS);
      }
      const { bare: b, proxy: p, ours: o } = measured as Record<(typeof kinds)[number], LoadResult>;
      rows.push({ connections, bare: b, proxy: p, ours: o, ratio: o.rps / b.rps, ratioProxy: o.rps / p.rps });
    }
    return rows;
  } finally {
    for (const child of children) await child.stop();
    dir.remove();
  }
}

/** Runs `work` on a gateway child with the V8 CPU profiler on for exactly its duration; summarizes the profile. */
export async function profiled<T>(gw: Child, work: () => Promise<T>): Promise<{ result: T; profile: ProfileSummary | null }> {
  const profDir = tempDir('toolgate-prof-');
  try {
    await gw.ask({ type: 'profile-start' }, 'profile-started');
    const result = await work();
    await gw.ask({ type: 'profile-stop', path: join(profDir.path, 'gateway.cpuprofile') }, 'profile-written', 60_000);
    return { result, profile: summarizeProfile(profDir.path) };
  } finally {
    profDir.remove();
  }
}

/** The gate at `connections`, profiled. */
export async function profileGate(options: { connections: number; durationS: number; warmupS: number }): Promise<{ result: LoadResult; profile: ProfileSummary | null }> {
  const dir = tempDir();
  let gw: Child | null = null;
  try {
    gw = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: join(dir.path, 'toolgate.db') });
    const t = target(gw, gw.tokens.dev);
    await load(t, options.connections, options.warmupS);
    return await profiled(gw, () => load(t, options.connections, options.durationS));
  } finally {
    await gw?.stop();
    dir.remove();
  }
}
