import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, eventually, runCliSync, tempDir } from '../helpers.js';
import { counterLines, spawnGateway, writeFixtureConfig, type ChildGateway } from './child-gateway.js';

type Kind = 'asyncDone' | 'asyncRunning' | 'asyncPending' | 'asyncJustApproved' | 'waitPending' | 'waitRunning';
const PLAN: [Kind, number][] = [
  ['asyncDone', 20],
  ['asyncRunning', 20],
  ['asyncPending', 20],
  ['asyncJustApproved', 10],
  ['waitPending', 20],
  ['waitRunning', 10],
];
const SLOW_MS = 4000;

const VALID = new Set(['pending:none', 'approved:pending', 'approved:running', 'approved:succeeded', 'approved:failed', 'approved:interrupted', 'rejected:none', 'expired:none', 'cancelled:none']);

describe('crash safety: kill -9 with 100 requests in flight', () => {
  it('restarts on the same file with every request in a valid state, nothing run twice, interrupted runs recorded as interrupted, waits cancelled, the audit chain intact', async () => {
    const dir = tempDir('toolgate-crash-');
    const counter = join(dir.path, 'counter.txt');
    const env = {
      DATABASE_PATH: join(dir.path, 'toolgate.db'),
      TOOLGATE_CONFIG: writeFixtureConfig(dir.path, counter),
      APPROVAL_POLLING_INTERVAL: '0.2',
      APPROVAL_MAX_PENDING: '500',
      RATE_LIMIT_PER_MINUTE: '0',
    };
    const gateways: ChildGateway[] = [];
    try {
      const first = await spawnGateway(env);
      gateways.push(first);
      const dev = first.tokens.dev_user!;
      const admin = first.tokens.admin_user!;
      expect(dev).toMatch(/^tg_/);
      expect(admin).toMatch(/^tg_/);

      const ids = new Map<string, { kind: Kind; tag: string }>();
      const idOfTag = new Map<string, string>();
      const waitCalls: Promise<unknown>[] = [];
      const call = (kind: Kind, i: number) => {
        const tag = `${kind}-${i}`;
        const slow = kind === 'asyncRunning' || kind === 'waitRunning';
        const tool = slow ? 'slow_count' : 'count';
        const args = slow ? { tag, ms: SLOW_MS } : { tag };
        if (kind.startsWith('wait')) {
          waitCalls.push(api(first.url, 'POST', `/tools/${tool}/call`, { token: dev, body: { arguments: args } }).catch((e: Error) => e));
          return;
        }
        return api(first.url, 'POST', `/tools/${tool}/call`, { token: dev, body: { arguments: args }, headers: { prefer: 'respond-async' } }).then((res) => {
          expect(res.status).toBe(202);
          ids.set(res.body.approval.id, { kind, tag });
          idOfTag.set(tag, res.body.approval.id);
        });
      };
      await Promise.all(PLAN.flatMap(([kind, n]) => Array.from({ length: n }, (_, i) => call(kind, i))));
      // The waiting callers' requests show up as pending; learn their ids.
      const pending = await eventually(async () => {
        const res = await api(first.url, 'GET', '/api/approvals/pending?limit=1000', { token: admin });
        return res.body.pending_approvals.length === 100 ? (res.body.pending_approvals as any[]) : null;
      }, 15_000);
      for (const p of pending) {
        const tag = p.arguments.tag as string;
        const kind = tag.split('-')[0] as Kind;
        ids.set(p.id, { kind, tag });
        idOfTag.set(tag, p.id);
      }
      expect(ids.size).toBe(100);
      const of = (kind: Kind) => [...ids].filter(([, v]) => v.kind === kind).map(([id]) => id);
      const approve = (id: string) => api(first.url, 'POST', `/api/approvals/${id}/approve`, { token: admin, body: { reason: 'chaos' } });

      for (const r of await Promise.all(of('asyncDone').map(approve))) expect(r.status).toBe(200);
      await eventually(() => counterLines(counter).length === 20, 15_000);
      for (const r of await Promise.all([...of('asyncRunning'), ...of('waitRunning')].map(approve))) expect(r.status).toBe(200);
      await eventually(async () => {
        const views = await Promise.all([...of('asyncRunning'), ...of('waitRunning')].map((id) => api(first.url, 'GET', `/api/approvals/${id}`, { token: admin })));
        return views.every((v) => v.body.approval.execution.status === 'running');
      }, 10_000);
      // The last ten are approved and the gateway dies at once, wherever their execution is.
      await Promise.race(of('asyncJustApproved').map((id) => approve(id).catch(() => null)));
      process.kill(first.child.pid!, 'SIGKILL');
      const died = await first.exited;
      expect(died.signal).toBe('SIGKILL');
      await Promise.all(waitCalls);

      const second = await spawnGateway(env);
      gateways.push(second);
      expect(second.tokens).toEqual({});
      // Recovery: the dead instance's pending waits are cancelled and its running executions interrupted.
      await eventually(async () => {
        const rows = (await readRows(env.DATABASE_PATH)).filter((r) => r.status === 'pending' && r.mode === 'wait');
        const running = (await readRows(env.DATABASE_PATH)).filter((r) => r.execution_status === 'running' || r.execution_status === 'pending');
        return rows.length === 0 && running.length === 0;
      }, 15_000);
      // Pending async requests survived the crash; approved now, they run once, on the new instance.
      const survivors = of('asyncPending');
      for (const r of await Promise.all(survivors.map((id) => api(second.url, 'POST', `/api/approvals/${id}/approve`, { token: admin, body: { reason: 'after' } })))) {
        expect(r.status).toBe(200);
      }
      await eventually(async () => (await readRows(env.DATABASE_PATH)).filter((r) => survivors.includes(r.id)).every((r) => r.execution_status === 'succeeded'), 15_000);
      // Let any orphaned slow run in the old upstream finish, so a late duplicate would show.
      await new Promise((r) => setTimeout(r, SLOW_MS + 500));

      const rows = await readRows(env.DATABASE_PATH);
      expect(rows).toHaveLength(100);
      const lines = counterLines(counter);
      const times = (tag: string) => lines.filter((l) => l === tag).length;
      expect(new Set(lines).size).toBe(lines.length); // nothing ran twice
      const summary: Record<string, Record<string, number>> = {};
      for (const row of rows) {
        const { kind, tag } = ids.get(row.id)!;
        const state = `${row.status}:${row.execution_status}`;
        expect(VALID.has(state), `${tag} is ${state}`).toBe(true);
        (summary[kind] ??= {})[state] = (summary[kind]![state] ?? 0) + 1;
        expect(times(tag)).toBeLessThanOrEqual(1);
        if (row.execution_status === 'succeeded') expect(times(tag)).toBe(1);
        switch (kind) {
          case 'asyncDone':
          case 'asyncPending':
            expect(state).toBe('approved:succeeded');
            break;
          case 'asyncRunning':
          case 'waitRunning':
            expect(state).toBe('approved:interrupted');
            expect(row.execution_error).toMatch(/restarted while the tool was running; it may or may not have run/);
            break;
          case 'asyncJustApproved':
            expect(['approved:succeeded', 'approved:interrupted', 'pending:none']).toContain(state);
            break;
          case 'waitPending':
            expect(state).toBe('cancelled:none');
            expect(row.status_reason).toBe('gateway restarted');
            expect(times(tag)).toBe(0);
            break;
        }
      }
      console.info('crash outcome by kind', JSON.stringify(summary), 'counter lines', lines.length);

      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
      const verify = runCliSync(['audit', 'verify'], { DATABASE_PATH: env.DATABASE_PATH });
      expect(verify.stdout).toMatch(/audit chain ok/);
      expect(verify.status).toBe(0);
    } finally {
      for (const g of gateways) g.killGroup();
      dir.remove();
    }
  }, 120_000);
});

async function readRows(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    db.pragma('busy_timeout = 5000');
    return db.prepare('select id, status, mode, status_reason, execution_status, execution_error from approval_requests').all() as {
      id: string;
      status: string;
      mode: string;
      status_reason: string | null;
      execution_status: string;
      execution_error: string | null;
    }[];
  } finally {
    db.close();
  }
}
