import { startChild, BENCH_ENV, tempDir, type Child } from '../lib/procs.js';
import { summarizeProfile, type ProfileSummary } from '../lib/profile.js';
import { ECHO_BODY, load, type LoadResult } from './gate.js';
import { join } from 'node:path';

export interface GateRow {
  connections: number;
  bare: LoadResult;
  ours: LoadResult;
  ratio: number;
}

const target = (child: Child, token: string) => ({ url: child.url, path: '/tools/echo/call', method: 'POST' as const, token, body: ECHO_BODY, cpuMs: child.cpuMs });

/**
 * The gate against the bare handler, both in child processes, measured one after the other at
 * each connection count (the order alternates, so drift from a noisy machine falls on both).
 */
export async function gateOverhead(options: { connections: number[]; durationS: number; warmupS: number }): Promise<GateRow[]> {
  const dir = tempDir();
  let bare: Child | null = null;
  let ours: Child | null = null;
  try {
    bare = await startChild('bare-hono', {});
    ours = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: join(dir.path, 'toolgate.db') });
    const bareTarget = target(bare, '');
    const ourTarget = target(ours, ours.tokens.dev);
    await load(bareTarget, 10, options.warmupS);
    await load(ourTarget, 10, options.warmupS);
    const rows: GateRow[] = [];
    for (const [i, connections] of options.connections.entries()) {
      let b: LoadResult;
      let o: LoadResult;
      if (i % 2 === 0) {
        b = await load(bareTarget, connections, options.durationS);
        o = await load(ourTarget, connections, options.durationS);
      } else {
        o = await load(ourTarget, connections, options.durationS);
        b = await load(bareTarget, connections, options.durationS);
      }
      rows.push({ connections, bare: b, ours: o, ratio: o.rps / b.rps });
    }
    return rows;
  } finally {
    await bare?.stop();
    await ours?.stop();
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
