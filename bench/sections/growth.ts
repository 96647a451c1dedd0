import { join } from 'node:path';
import { createHistoryDb } from '../lib/history.js';
import { startChild, BENCH_ENV, tempDir } from '../lib/procs.js';
import { ECHO_BODY, load, type LoadResult } from './gate.js';

export interface GrowthResult {
  auditRows: number;
  decidedRequests: number;
  pendingRequests: number;
  setupS: number;
  gate: LoadResult;
  pendingList: LoadResult;
}

/**
 * The same gate and the same pending list on a database with a growing history: the audit log
 * at each size in `sizes`, with `pending` pending requests throughout. A fresh gateway process
 * per size, on the same file.
 */
export async function growth(options: { sizes: number[]; pending: number; connections: number; durationS: number; warmupS: number }): Promise<GrowthResult[]> {
  const dir = tempDir();
  const path = join(dir.path, 'toolgate.db');
  const history = await createHistoryDb(path);
  const results: GrowthResult[] = [];
  try {
    await history.addPending(options.pending);
    for (const size of options.sizes) {
      const built = await history.growTo(size);
      const gw = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: path });
      try {
        const gate = { url: gw.url, path: '/tools/echo/call', method: 'POST' as const, token: history.tokens.dev, body: ECHO_BODY, cpuMs: gw.cpuMs };
        const pendingList = { url: gw.url, path: '/api/approvals/pending?limit=50', method: 'GET' as const, token: history.tokens.admin, cpuMs: gw.cpuMs };
        await load(gate, options.connections, options.warmupS);
        const gateResult = await load(gate, options.connections, options.durationS);
        await load(pendingList, options.connections, options.warmupS);
        const listResult = await load(pendingList, options.connections, options.durationS);
        results.push({ auditRows: built.auditRows, decidedRequests: built.requests, pendingRequests: built.pending, setupS: built.seconds, gate: gateResult, pendingList: listResult });
      } finally {
        await gw.stop();
      }
    }
    return results;
  } finally {
    await history.close();
    dir.remove();
  }
}
