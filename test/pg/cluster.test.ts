/**
 * Two gateway processes on one PostgreSQL database behave as one gateway: pushes and wake-ups
 * cross between them within milliseconds (LISTEN/NOTIFY), races across them have one winner, the
 * caps hold across both, and the loss of one loses nothing.
 */
import { join } from 'node:path';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/audit.service.js';
import { UserAdmin } from '../../src/auth/users.service.js';
import { PgStore } from '../../src/db/pg-store.js';
import { counterLines, spawnGateway, writeFixtureConfig, type ChildGateway } from '../chaos/child-gateway.js';
import { api, eventually, runCliSync, tempDir } from '../helpers.js';
import { freshDatabase, postgresAvailable, SKIP_REASON } from '../kit/postgres.js';
import { connectApprover, type TestApprover } from '../ws-client.js';

/** The change feed polls every 5 polling intervals on PostgreSQL: 5 s here. A push must beat it by far. */
const POLLING_INTERVAL = '1';
const PUSH_BOUND_MS = 2000;

interface Cluster {
  url: string;
  a: ChildGateway;
  b: ChildGateway;
  dir: string;
  counter: string;
  env: Record<string, string>;
  admin: string;
  /** Adds admins (approvers) through the store, as `toolgate users add` would; returns their tokens. */
  approvers(n: number, prefix: string): Promise<string[]>;
  dev: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fresh database and two gateways on it, A first (it seeds and shows the tokens), then B. */
async function cluster(env: Record<string, string> = {}): Promise<Cluster> {
  const url = await freshDatabase();
  const dir = tempDir('toolgate-cluster-');
  cleanups.push(() => dir.remove());
  const counter = join(dir.path, 'counter.txt');
  const shared = {
    DATABASE_URL: url,
    // One folder for both: one audit signing key and one checkpoint file, as on a shared volume.
    DATABASE_PATH: join(dir.path, 'toolgate.db'),
    TOOLGATE_CONFIG: writeFixtureConfig(dir.path, counter),
    APPROVAL_POLLING_INTERVAL: POLLING_INTERVAL,
    ...env,
  };
  const a = await spawnGateway(shared, 60_000);
  cleanups.push(() => a.killGroup());
  const b = await spawnGateway(shared, 60_000);
  cleanups.push(() => b.killGroup());
  const store = await PgStore.open(url, { migrate: false });
  cleanups.push(() => store.close());
  const admin = new UserAdmin({ store, audit: createAuditLog({ clock: Date, instanceId: 'cluster-test' }), clock: Date });
  return {
    url,
    a,
    b,
    dir: dir.path,
    counter,
    env: shared,
    admin: a.tokens.admin_user!,
    dev: a.tokens.dev_user!,
    approvers: (n, prefix) => Promise.all(Array.from({ length: n }, (_, i) => admin.add('cluster-test', `${prefix}${i}`, 'admin'))),
  };
}

async function approverOn(gateway: ChildGateway, token: string): Promise<TestApprover> {
  const approver = await connectApprover(gateway.wsUrl, token);
  cleanups.push(() => approver.close());
  await approver.next((f) => f.type === 'hello');
  return approver;
}

const asyncCall = (gateway: ChildGateway, token: string, tool: string, args: Record<string, unknown>) =>
  api(gateway.url, 'POST', `/tools/${tool}/call`, { token, body: { arguments: args }, headers: { prefer: 'respond-async' } });

if (!postgresAvailable()) {
  describe.skip(`several gateways on one PostgreSQL (skipped: ${SKIP_REASON})`, () => {});
} else {
  describe('several gateways on one PostgreSQL', { timeout: 180_000 }, () => {
    it('pushes a request made on A to an approver on B, and wakes the caller on A with a decision made on B, long before the feed polls', async () => {
      const c = await cluster();
      const onB = await approverOn(c.b, c.admin);
      for (let round = 0; round < 3; round++) {
        const asked = performance.now();
        const call = api(c.a.url, 'POST', '/tools/write_file/call', { token: c.dev, body: { arguments: { path: `p${round}`, content: 'x' } } });
        const pushed = await onB.next((f) => f.type === 'approval.requested' && f.approval.arguments.path === `p${round}`, PUSH_BOUND_MS * 3);
        const pushMs = performance.now() - asked;
        const decided = performance.now();
        onB.send({ type: 'decide', ref: `r${round}`, id: pushed.approval.id, decision: 'approve', reason: 'cross-instance' });
        const res = await call;
        const wakeMs = performance.now() - decided;
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        expect(res.body.approval).toMatchObject({ status: 'approved', decisions: [expect.objectContaining({ reason: 'cross-instance' })] });
        expect(pushMs, `push A → B, round ${round}`).toBeLessThan(PUSH_BOUND_MS);
        expect(wakeMs, `decision on B → caller on A, round ${round}`).toBeLessThan(PUSH_BOUND_MS);
      }
    });

    it('gives exactly one winner among 20 approvers racing on both gateways, every round', async () => {
      const c = await cluster();
      const tokens = await c.approvers(20, 'racer');
      for (let round = 0; round < 3; round++) {
        const made = await asyncCall(c.a, c.dev, 'write_file', { path: `race${round}`, content: 'x' });
        expect(made.status).toBe(202);
        const id = made.body.approval.id as string;
        const answers = await Promise.all(
          tokens.map((token, i) => api((i % 2 ? c.a : c.b).url, 'POST', `/api/approvals/${id}/${i % 3 ? 'approve' : 'reject'}`, { token, body: { reason: `racer ${i}` } })),
        );
        const winners = answers.filter((r) => r.status === 200);
        expect(winners, `round ${round}`).toHaveLength(1);
        expect(answers.filter((r) => r.status === 409)).toHaveLength(19);
        const final = await api(c.b.url, 'GET', `/api/approvals/${id}`, { token: c.admin });
        expect(final.body.approval.decisions).toHaveLength(1);
        expect(final.body.approval.status).toBe(winners[0]!.body.approval.status);
      }
    });

    it('decides a quorum-2 request voted on at both gateways at once exactly once, and runs it once', async () => {
      const c = await cluster({ APPROVAL_QUORUM_HIGH: '2' });
      const [first, second] = await c.approvers(2, 'voter');
      const rounds = 8;
      for (let round = 0; round < rounds; round++) {
        const made = await asyncCall(c.a, c.dev, 'count', { tag: `quorum-${round}` });
        expect(made.status).toBe(202);
        const id = made.body.approval.id as string;
        const votes = await Promise.all([
          api(c.a.url, 'POST', `/api/approvals/${id}/approve`, { token: first!, body: { reason: 'one' } }),
          api(c.b.url, 'POST', `/api/approvals/${id}/approve`, { token: second!, body: { reason: 'two' } }),
        ]);
        expect(votes.map((v) => v.status), `round ${round}`).toEqual([200, 200]);
        const done = await eventually(async () => {
          const view = (await api(c.b.url, 'GET', `/api/approvals/${id}`, { token: c.admin })).body.approval;
          return view.execution.status === 'succeeded' ? view : undefined;
        }, 20_000);
        expect(done).toMatchObject({ status: 'approved', requiredApprovals: 2 });
        expect(done.decisions).toHaveLength(2);
      }
      // Each ran once, on whichever gateway claimed it.
      const lines = counterLines(c.counter);
      expect(lines.sort()).toEqual(Array.from({ length: rounds }, (_, r) => `quorum-${r}`).sort());
    });

    it('holds the pending caps exactly under creation at once on both gateways', async () => {
      const c = await cluster({ APPROVAL_MAX_PENDING: '5', APPROVAL_MAX_PENDING_PER_USER: '5' });
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => asyncCall(i % 2 ? c.a : c.b, c.dev, 'write_file', { path: `cap${i}`, content: 'x' })));
      expect(answers.filter((r) => r.status === 202)).toHaveLength(5);
      expect(answers.filter((r) => r.status === 429).map((r) => r.body.error.code)).toEqual(Array(25).fill('too_many_pending'));
      expect((await api(c.a.url, 'GET', '/api/approvals/pending', { token: c.admin })).body.count).toBe(5);
    });

    it('recovers on B what A held when A is killed: waits cancelled, runs interrupted, none run twice, async requests kept, audit chains whole', async () => {
      const c = await cluster();
      const onB = await approverOn(c.b, c.admin);
      // On A: two callers waiting for a decision, two approved runs under way, one async request.
      const noAnswer = (err: Error) => ({ status: 0, body: err.message });
      const waiting = [0, 1].map((i) => api(c.a.url, 'POST', '/tools/write_file/call', { token: c.dev, body: { arguments: { path: `held${i}`, content: 'x' } } }).catch(noAnswer));
      const running = [0, 1].map((i) => api(c.a.url, 'POST', '/tools/slow_count/call', { token: c.dev, body: { arguments: { tag: `run${i}`, ms: 60_000 } } }).catch(noAnswer));
      const kept = await asyncCall(c.a, c.dev, 'count', { tag: 'after-recovery' });
      expect(kept.status).toBe(202);
      const requested = await Promise.all(
        ['held0', 'held1', 'run0', 'run1'].map((tag) => onB.next((f) => f.type === 'approval.requested' && (f.approval.arguments.path === tag || f.approval.arguments.tag === tag), 10_000)),
      );
      for (const f of requested.slice(2)) onB.send({ type: 'decide', ref: f.approval.id, id: f.approval.id, decision: 'approve', reason: 'run it' });
      // Both runs under way on A (claimed by A, whose callers wait there).
      await eventually(async () => {
        const views = await Promise.all(requested.slice(2).map((f) => api(c.b.url, 'GET', `/api/approvals/${f.approval.id}`, { token: c.admin })));
        return views.every((v) => v.body.approval.execution.status === 'running') || undefined;
      }, 20_000);

      c.a.killGroup();
      await c.a.exited;
      for (const res of await Promise.all([...waiting, ...running])) {
        expect(res.status, 'a caller on the killed gateway gets no answer from it').toBe(0);
      }

      const [held0, held1, run0, run1] = requested.map((f) => f.approval.id as string);
      const recovered = await eventually(
        async () => {
          const views = await Promise.all([held0, held1, run0, run1].map(async (id) => (await api(c.b.url, 'GET', `/api/approvals/${id}`, { token: c.admin })).body.approval));
          return views.every((v) => v.status !== 'pending' && v.execution.status !== 'running') ? views : undefined;
        },
        30_000,
        100,
      );
      expect(recovered.map((v) => [v.status, v.statusReason])).toEqual([
        ['cancelled', 'gateway restarted'],
        ['cancelled', 'gateway restarted'],
        ['approved', 'run it'],
        ['approved', 'run it'],
      ]);
      expect(recovered.slice(2).map((v) => v.execution.status)).toEqual(['interrupted', 'interrupted']);

      // The async request made on A lost nothing: approved on B, it runs once, on B.
      const approved = await api(c.b.url, 'POST', `/api/approvals/${kept.body.approval.id}/approve`, { token: c.admin, body: { reason: 'still here' } });
      expect(approved.status).toBe(200);
      await eventually(async () => (await api(c.b.url, 'GET', `/api/approvals/${kept.body.approval.id}`, { token: c.admin })).body.approval.execution.status === 'succeeded' || undefined, 20_000);
      // The interrupted runs never run again, here or anywhere: only the async request counted.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(counterLines(c.counter)).toEqual(['after-recovery']);

      const verify = runCliSync(['audit', 'verify'], { DATABASE_URL: c.url, DATABASE_PATH: c.env.DATABASE_PATH! });
      expect(verify.status, verify.stdout + verify.stderr).toBe(0);
      expect(verify.stdout).toMatch(/audit chain ok: \d+ events verified in \d+ chains/);
    });

    it('loses no event when the listening connection drops: it listens again and reads what it missed', async () => {
      const c = await cluster();
      const onB = await approverOn(c.b, c.admin);
      const sql = postgres(c.url, { max: 1, onnotice: () => {} });
      cleanups.push(() => sql.end());
      const listeners = async () => (await sql`select pid from pg_stat_activity where datname = current_database() and query ilike 'listen%'`).map((r) => r.pid as number);
      const before = await eventually(async () => ((await listeners()).length === 2 ? await listeners() : undefined), 10_000);
      // Cut every listener, then make requests on A at once, while they are away.
      await sql`select pg_terminate_backend(pid) from pg_stat_activity where pid = any(${before})`;
      const made = await Promise.all([0, 1, 2].map((i) => asyncCall(c.a, c.dev, 'write_file', { path: `dropped${i}`, content: 'x' })));
      expect(made.map((r) => r.status)).toEqual([202, 202, 202]);
      for (const r of made) await onB.next((f) => f.type === 'approval.requested' && f.approval.id === r.body.approval.id, 15_000);
      // Listening again on new connections, and pushing at once again.
      await eventually(async () => {
        const now = await listeners();
        return now.length === 2 && now.every((pid) => !before.includes(pid)) ? now : undefined;
      }, 15_000);
      const asked = performance.now();
      const again = await asyncCall(c.a, c.dev, 'write_file', { path: 'after', content: 'x' });
      await onB.next((f) => f.type === 'approval.requested' && f.approval.id === again.body.approval.id, PUSH_BOUND_MS * 3);
      expect(performance.now() - asked).toBeLessThan(PUSH_BOUND_MS);
    });
  });
}
