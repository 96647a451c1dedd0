import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import postgres from 'postgres';
import { NO_POSTGRES, startThrowawayPostgres, type ThrowawayPostgres } from '../../test/kit/pg-cluster.js';
import { BENCH_ENV, startChild, tempDir, type Child } from '../lib/procs.js';
import { ECHO_BODY, load, type LoadResult } from './gate.js';
import { approvalFlow, type FlowResult } from './push.js';
import { scaleOn, type ScaleResult } from './scale.js';

/**
 * The gateway on PostgreSQL beside SQLite, and two gateways on one PostgreSQL database.
 *
 * A throwaway cluster (test/kit/pg-cluster.ts) with PostgreSQL's default durability (fsync and
 * synchronous_commit on), on this machine, over loopback TCP. Every case gets a new database.
 * The gateways are child processes; the load generator and the approver bot run in this one.
 *
 * - gate: LOW calls (each one audited write) against one gateway on SQLite, then one on PostgreSQL.
 * - audited writes per second: the same LOW calls against one PostgreSQL gateway, then split over
 *   two gateways on the same database at once (their sum), beside one SQLite gateway: the audit
 *   log takes no lock shared between writers, so a second instance is not held back by the first.
 * - approval flow: callers and the approver on one PostgreSQL gateway; then callers on A and the
 *   approver on B (the push crosses instances through NOTIFY, the decision comes back the same way).
 * - scale: thousands of callers waiting at once in wait mode, half on each of two gateways.
 */
export interface PostgresResult {
  server: { version: string; fsync: string; synchronousCommit: string };
  gate: { connections: number; sqlite: LoadResult; postgres: LoadResult; ratio: number }[];
  auditedWrites: {
    connections: number;
    sqlite: number;
    postgresOne: number;
    postgresTwo: number;
    /** Per instance, in the two-instance run. */
    postgresTwoEach: number[];
    /** postgresTwo / postgresOne */
    scaling: number;
    /** Server CPU per call (µs), summed over the instances, one instance vs two. */
    cpuPerCallUs: { one: number; two: number };
  };
  flow: (FlowResult & { where: 'sqlite' | 'postgres, one instance' | 'postgres, across two instances' })[];
  /** Callers waiting at once, spread over two gateways on one database, one approver on the first. */
  scale: ScaleResult[];
}

export interface PostgresPlan {
  connections: number[];
  durationS: number;
  warmupS: number;
  flow: { c1: number; c100: number; warmup: number; deadlineMs: number };
  scale: { callers: number[]; timeoutMs: number };
}

const lowCall = (child: Child, token: string) => ({ url: child.url, path: '/tools/echo/call', method: 'POST' as const, token, body: ECHO_BODY, cpuMs: child.cpuMs });

async function serverSettings(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ version: string; fsync: string; sc: string }[]>`select current_setting('server_version') as version, current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc`;
    return { version: row!.version, fsync: row!.fsync, synchronousCommit: row!.sc };
  } finally {
    await sql.end();
  }
}

/**
 * Starts `count` gateways on one new database (the first migrates and seeds it; the others find it
 * ready) sharing one data folder (one signing key), runs `fn`, and stops them.
 */
async function withPostgresGateways<T>(cluster: ThrowawayPostgres, count: number, env: Record<string, string>, fn: (gateways: Child[], url: string) => Promise<T>): Promise<T> {
  const url = await cluster.createDatabase(`bench_${randomBytes(5).toString('hex')}`);
  const dir = tempDir();
  const gateways: Child[] = [];
  try {
    for (let i = 0; i < count; i++) {
      gateways.push(await startChild('gateway', { ...BENCH_ENV, DATABASE_URL: url, DATABASE_PATH: join(dir.path, 'toolgate.db'), ...env }));
    }
    // Only the first seeded the users: every gateway serves the same tokens.
    for (const gw of gateways.slice(1)) gw.tokens = gateways[0]!.tokens;
    return await fn(gateways, url);
  } finally {
    for (const gw of gateways) await gw.stop();
    dir.remove();
  }
}

async function withSqliteGateway<T>(fn: (gw: Child) => Promise<T>): Promise<T> {
  const dir = tempDir();
  const gw = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: join(dir.path, 'toolgate.db') });
  try {
    return await fn(gw);
  } finally {
    await gw.stop();
    dir.remove();
  }
}

export async function postgresSection(plan: PostgresPlan, log: (line: string) => void): Promise<PostgresResult> {
  const cluster = await startThrowawayPostgres();
  if (!cluster) throw new Error(`${NO_POSTGRES}: the PostgreSQL section cannot run`);
  try {
    const server = await serverSettings(cluster.adminUrl);
    log(`  PostgreSQL ${server.version}, fsync ${server.fsync}, synchronous_commit ${server.synchronousCommit}`);
    const top = plan.connections[plan.connections.length - 1]!;

    // The gate and the audited writes of one SQLite gateway.
    const sqliteGate = new Map<number, LoadResult>();
    await withSqliteGateway(async (gw) => {
      const t = lowCall(gw, gw.tokens.dev);
      await load(t, 10, plan.warmupS);
      for (const c of plan.connections) sqliteGate.set(c, await load(t, c, plan.durationS));
    });

    // One PostgreSQL gateway.
    const pgGate = new Map<number, LoadResult>();
    await withPostgresGateways(cluster, 1, {}, async ([gw]) => {
      const t = lowCall(gw!, gw!.tokens.dev);
      await load(t, 10, plan.warmupS);
      for (const c of plan.connections) pgGate.set(c, await load(t, c, plan.durationS));
    });
    const gate = plan.connections.map((c) => ({ connections: c, sqlite: sqliteGate.get(c)!, postgres: pgGate.get(c)!, ratio: pgGate.get(c)!.rps / sqliteGate.get(c)!.rps }));
    for (const g of gate) log(`  gate c=${g.connections}: SQLite ${g.sqlite.rps.toFixed(0)}/s, PostgreSQL ${g.postgres.rps.toFixed(0)}/s (p99 ${g.postgres.latencyMs.p99.toFixed(1)} ms), ratio ${g.ratio.toFixed(3)}`);

    // Two PostgreSQL gateways at once, the connections split between them.
    const two = await withPostgresGateways(cluster, 2, {}, async (gateways) => {
      for (const gw of gateways) await load(lowCall(gw, gw.tokens.dev), 10, plan.warmupS);
      return Promise.all(gateways.map((gw) => load(lowCall(gw, gw.tokens.dev), Math.ceil(top / 2), plan.durationS)));
    });
    const one = pgGate.get(top)!;
    const cpuPerCall = (runs: LoadResult[]) => (runs.reduce((s, r) => s + r.serverCpuCores * r.durationS, 0) * 1e6) / runs.reduce((s, r) => s + r.requests, 0);
    const postgresTwo = two.reduce((s, r) => s + r.rps, 0);
    const auditedWrites = {
      connections: top,
      sqlite: sqliteGate.get(top)!.rps,
      postgresOne: one.rps,
      postgresTwo,
      postgresTwoEach: two.map((r) => r.rps),
      scaling: postgresTwo / one.rps,
      cpuPerCallUs: { one: cpuPerCall([one]), two: cpuPerCall(two) },
    };
    log(`  audited writes/s at ${top} connections: SQLite ${auditedWrites.sqlite.toFixed(0)}, PostgreSQL one instance ${one.rps.toFixed(0)}, two instances ${postgresTwo.toFixed(0)} (×${auditedWrites.scaling.toFixed(2)})`);

    // The approval flow: SQLite, one PostgreSQL gateway, and across two.
    const flow: PostgresResult['flow'] = [];
    const f = plan.flow;
    const runFlows = async (where: PostgresResult['flow'][number]['where'], caller: Child, approver: Child) => {
      for (const [concurrency, total] of [[1, f.c1], [100, f.c100]] as const) {
        const r = await approvalFlow(caller, { total, concurrency, style: { kind: 'wait' }, warmup: f.warmup, deadlineMs: f.deadlineMs, approverAt: approver });
        log(`  ${where}, c=${concurrency}: push p99 ${r.pushMs.p99.toFixed(2)} ms, decision→caller p99 ${r.decisionToCallerMs.p99.toFixed(2)} ms, ${r.approvalsPerSecond.toFixed(0)}/s, failures ${r.failures}`);
        flow.push({ ...r, where });
      }
    };
    await withSqliteGateway((gw) => runFlows('sqlite', gw, gw));
    await withPostgresGateways(cluster, 1, {}, ([gw]) => runFlows('postgres, one instance', gw!, gw!));
    await withPostgresGateways(cluster, 2, {}, ([a, b]) => runFlows('postgres, across two instances', a!, b!));
    const scale: ScaleResult[] = [];
    for (const callers of plan.scale.callers) {
      const env = { APPROVAL_MAX_PENDING: String(callers * 2), APPROVAL_TIMEOUT: '900' };
      const r = await withPostgresGateways(cluster, 2, env, (gateways) => scaleOn(gateways, 'wait', callers, { timeoutMs: plan.scale.timeoutMs }));
      log(`  ${callers} waiting over two gateways: push all ${r.pushAllS.toFixed(2)} s, peak RSS ${r.peakRssMb} MB per gateway, decide all ${r.decideAllS.toFixed(2)} s (${r.approvalsPerSecond.toFixed(0)}/s), failures ${r.failures}`);
      scale.push(r);
    }
    return { server, gate, auditedWrites, flow, scale };
  } finally {
    cluster.stop();
  }
}
