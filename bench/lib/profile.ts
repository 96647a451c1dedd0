import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './procs.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  selfPct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Share of samples that were not idle. */
  busyPct: number;
  top: ProfileEntry[];
  /** Self time grouped by where the code lives: src/<file>, a package, node internals, GC. */
  byArea: { area: string; selfMs: number; selfPct: number }[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) return path.slice(nm + 'node_modules/'.length);
  return path.startsWith('/') ? relative(ROOT, path) : path;
}

function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)' || name === '(idle)') return name;
  const short = shortUrl(url);
  if (!short) return 'native / V8 builtins';
  if (short.startsWith('node:')) return 'node internals';
  const parts = short.split('/');
  if (url.includes('node_modules/')) return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  return short;
}

/** Summarizes the newest .cpuprofile in `dir`: total time by function (self time) and by area. */
export function summarizeProfile(dir: string, topN = 15): ProfileSummary | null {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) return null;
  const file = join(dir, files[files.length - 1]!);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);
  // A native frame (a SQLite step, a socket write) is named after the nearest JavaScript caller.
  const jsCaller = (id: number): ProfileNode | undefined => {
    for (let cur = parentOf.get(id); cur !== undefined; cur = parentOf.get(cur)) if (byId.get(cur)!.callFrame.url) return byId.get(cur);
    return undefined;
  };
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, { name: string; where: string; us: number }>();
  const byArea = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const caller = url || functionName.startsWith('(') ? undefined : jsCaller(id);
    const name = `${functionName || '(anonymous)'}${caller ? ` ← ${caller.callFrame.functionName || '(anonymous)'}` : ''}`;
    total += us;
    if (name === '(idle)') idle += us;
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : caller ? `${shortUrl(caller.callFrame.url)}:${caller.callFrame.lineNumber + 1} (native)` : '';
    const key = `${name}@${where}`;
    const entry = byFunction.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    const area = caller ? `${areaOf(caller.callFrame.url, '')} (native)` : areaOf(url, functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => Math.round((us / Math.max(1, busy)) * 1000) / 10;
  return {
    file: relative(ROOT, file),
    totalMs: Math.round(total / 1000),
    busyPct: Math.round((busy / Math.max(1, total)) * 1000) / 10,
    top: [...byFunction.values()]
      .filter((e) => e.name !== '(idle)')
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((e) => ({ name: e.name, where: e.where, selfMs: Math.round(e.us / 1000), selfPct: pct(e.us) })),
    byArea: [...byArea.entries()]
      .filter(([area]) => area !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([area, us]) => ({ area, selfMs: Math.round(us / 1000), selfPct: pct(us) })),
  };
}
