// @module-tag process
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/logger.js';
import { spawnGateway, writeFixtureConfig, type ChildGateway } from '../chaos/child-gateway.js';
import { api, eventually, pendingApprovals, startTestGateway, tempDir, type TestGateway } from '../helpers.js';
import { connectApprover } from '../ws-client.js';

const WRITE = { arguments: { path: 'notes.txt', content: 'hello' } };

function capturedLogger(): { logger: Logger; lines(): { level: number; msg: string }[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d) => (text += d));
  return {
    logger: createLogger('info', { destination: stream }),
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: number; msg: string }),
  };
}

function jsonLines(out: string): { level: number; msg: string }[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string });
}

const heartbeatOf = async (peer: TestGateway, id: string) => {
  const [row] = await peer.query<{ heartbeatAt: number | string; stoppedAt: number | string | null }>(
    'select heartbeat_at as "heartbeatAt", stopped_at as "stoppedAt" from instances where id = ?',
    id,
  );
  return { heartbeatAt: Number(row!.heartbeatAt), stoppedAt: row!.stoppedAt === null ? null : Number(row!.stoppedAt) };
};

describe('fencing: an instance declared dead by a peer stops serving', () => {
  it('answers its waiting caller 503, closes its approver sockets and refuses new work once a peer has declared it dead', async () => {
    const dir = tempDir();
    const log = capturedLogger();
    let fencedCalls = 0;
    const options = { env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 1500 };
    const a = await startTestGateway({ ...options, dir: dir.path, logger: log.logger, onFenced: () => fencedCalls++ });
    let b: TestGateway | undefined;
    try {
      const approver = await connectApprover(a.wsUrl, a.tokens.admin);
      await approver.seen((f) => f.type === 'hello');
      const held = api(a.url, 'POST', '/tools/write_file/call', { token: a.tokens.dev, body: WRITE });
      const [p] = (await pendingApprovals(a)) as { id: string }[];

      // A peer whose clock runs a minute ahead sees a's last heartbeat as a minute old: to it, a is dead.
      b = await startTestGateway({ ...options, dbPath: a.dbPath, clock: { now: () => Date.now() + 60_000 } });
      expect((await b.gateway.store.approvals.request(p!.id))).toMatchObject({ status: 'cancelled', statusReason: 'gateway restarted' });

      const res = await held;
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('shutting_down');
      expect(a.gateway.jobs.fenced).toBe(true);
      expect(fencedCalls).toBe(1);
      expect((await approver.closed).code).toBe(1001);
      const after = await api(a.url, 'POST', '/tools/echo/call', { token: a.tokens.dev, body: { arguments: {} } });
      expect(after.status).toBe(503);
      expect((await api(a.url, 'GET', '/health', { token: a.tokens.admin })).body.status).toBe('degraded');
      expect(log.lines().filter((l) => l.level === 50 && /declared dead by a peer/.test(l.msg))).toHaveLength(1);

      // The peer serves on, undisturbed.
      const onPeer = await api(b.url, 'POST', '/tools/echo/call', { token: a.tokens.dev, body: { arguments: { message: 'still here' } } });
      expect(onPeer.status).toBe(200);
    } finally {
      await b?.close();
      await a.close();
      dir.remove();
    }
  });

  it('a `toolgate serve` stalled past the stale threshold (SIGSTOP) finds itself fenced off when it wakes, answers its caller 503 and exits non-zero', async () => {
    const dir = tempDir();
    const peer = await startTestGateway({ dir: dir.path, env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 1500 });
    let child: ChildGateway | undefined;
    try {
      child = await spawnGateway({
        DATABASE_PATH: peer.dbPath,
        TOOLGATE_CONFIG: writeFixtureConfig(dir.path, join(dir.path, 'count.txt')),
        APPROVAL_POLLING_INTERVAL: '0.1',
      });
      const held = api(child.url, 'POST', '/tools/write_file/call', { token: peer.tokens.dev, body: WRITE }).catch((e: Error) => e);
      const [p] = (await pendingApprovals(peer)) as { id: string }[];
      const childId = (await peer.gateway.store.approvals.request(p!.id))!.instanceId!;

      process.kill(child.child.pid!, 'SIGSTOP'); // the whole process stalls, its event loop included
      await eventually(async () => (await heartbeatOf(peer, childId)).stoppedAt !== null, 15_000);
      expect((await peer.gateway.store.approvals.request(p!.id))).toMatchObject({ status: 'cancelled', statusReason: 'gateway restarted' });
      process.kill(child.child.pid!, 'SIGCONT');

      const res = await held;
      expect(res).not.toBeInstanceOf(Error);
      expect((res as Awaited<ReturnType<typeof api>>).status).toBe(503);
      const exit = await child.exited;
      expect(exit.code).toBe(1);
      expect(jsonLines(child.stdout()).filter((l) => l.level === 50 && /declared dead by a peer/.test(l.msg))).toHaveLength(1);
      expect(child.stderr()).toMatch(/declared dead by a peer gateway, shutting down/);
    } finally {
      child?.killGroup();
      await peer.close();
      dir.remove();
    }
  }, 60_000);
});

describe('fencing: a stall below the stale threshold harms nobody', () => {
  it('leaves the waiting caller of a `toolgate serve` stalled for 1.5 s alone (default threshold: 5 s at a 0.1 s polling interval)', async () => {
    const dir = tempDir();
    const peer = await startTestGateway({ dir: dir.path, env: { APPROVAL_POLLING_INTERVAL: '0.1' } });
    let child: ChildGateway | undefined;
    try {
      child = await spawnGateway({
        DATABASE_PATH: peer.dbPath,
        TOOLGATE_CONFIG: writeFixtureConfig(dir.path, join(dir.path, 'count.txt')),
        APPROVAL_POLLING_INTERVAL: '0.1',
      });
      const held = api(child.url, 'POST', '/tools/write_file/call', { token: peer.tokens.dev, body: WRITE });
      const [p] = (await pendingApprovals(peer)) as { id: string }[];
      const childId = (await peer.gateway.store.approvals.request(p!.id))!.instanceId!;

      process.kill(child.child.pid!, 'SIGSTOP');
      const stalledAt = Date.now();
      await new Promise((r) => setTimeout(r, 1500)); // the stall itself: the stimulus, not a wait for a condition
      process.kill(child.child.pid!, 'SIGCONT');
      await eventually(async () => (await heartbeatOf(peer, childId)).heartbeatAt > stalledAt + 1500, 10_000);

      expect((await heartbeatOf(peer, childId)).stoppedAt).toBeNull();
      expect((await peer.gateway.store.approvals.request(p!.id))?.status).toBe('pending');
      const decided = await api(peer.url, 'POST', `/api/approvals/${p!.id}/approve`, { token: peer.tokens.admin, body: { reason: 'ok' } });
      expect(decided.status).toBe(200);
      const res = await held;
      expect(res.status).toBe(200);
      expect(res.body.approval.execution.status).toBe('succeeded');
      expect(child.child.exitCode).toBeNull();
      child.child.kill('SIGTERM');
      expect((await child.exited).code).toBe(0);
    } finally {
      child?.killGroup();
      await peer.close();
      dir.remove();
    }
  }, 60_000);

  it('does not let a peer that shared the stall (a blocked event loop) cancel a live gateway\'s caller when it wakes', async () => {
    const dir = tempDir();
    const options = { env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 600 };
    const a = await startTestGateway({ ...options, dir: dir.path });
    const b = await startTestGateway({ ...options, dbPath: a.dbPath });
    try {
      const held = api(a.url, 'POST', '/tools/write_file/call', { token: a.tokens.dev, body: WRITE });
      const [p] = (await pendingApprovals(a)) as { id: string }[];
      // Both gateways live in this process: block its event loop for well over the threshold.
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        /* busy: no timer, heartbeat or socket is served */
      }
      const resumedAt = Date.now();
      await eventually(async () => (await heartbeatOf(b, a.gateway.instanceId)).heartbeatAt >= resumedAt);
      await new Promise((r) => setTimeout(r, 300)); // a few more sweeps of b
      expect(a.gateway.jobs.fenced).toBe(false);
      expect((await b.gateway.store.approvals.request(p!.id))?.status).toBe('pending');
      expect((await api(b.url, 'POST', `/api/approvals/${p!.id}/approve`, { token: a.tokens.admin, body: { reason: 'ok' } })).status).toBe(200);
      expect((await held).status).toBe(200);
    } finally {
      await b.close();
      await a.close();
      dir.remove();
    }
  });
});
