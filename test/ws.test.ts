import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createUserWithToken } from '../src/db/seed.js';
import { api, eventually, pendingApprovals, startTestGateway, type TestGateway } from './helpers.js';
import { connectApprover, type TestApprover } from './ws-client.js';

describe('GET /ws/approvals', () => {
  let t: TestGateway;
  const sockets: TestApprover[] = [];
  const approver = async (token: string | undefined, url = t.wsUrl) => {
    const a = await connectApprover(url, token);
    sockets.push(a);
    return a;
  };
  const hello = (a: TestApprover) => a.seen((f) => f.type === 'hello');
  const callWriteFile = (token: string, content = 'abc', headers: Record<string, string> = {}) =>
    api(t.url, 'POST', '/tools/write_file/call', { token, body: { arguments: { path: 'x', content } }, headers });

  beforeEach(async () => {
    t = await startTestGateway({ authTimeoutMs: 300 });
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) await s.close();
    await t.close();
  });

  it('pushes a request to two approvers, lets one approve it over the socket, and answers a second decision with not_pending', async () => {
    const secondAdmin = await createUserWithToken(t.gateway.store, 'admin_two', 'admin', Date.now());
    const [one, two] = [await approver(t.tokens.admin), await approver(secondAdmin)];
    expect(await hello(one)).toMatchObject({ approver: { id: 'admin_user', role: 'admin' }, pending: [] });
    expect(await hello(two)).toMatchObject({ approver: { id: 'admin_two', role: 'admin' }, pending: [] });

    const call = callWriteFile(t.tokens.dev);
    const pushed = await Promise.all([one, two].map((a) => a.seen((f) => f.type === 'approval.requested')));
    expect(pushed[0]!.approval).toMatchObject({ tool: 'write_file', sensitivity: 'HIGH', status: 'pending', requester: { id: 'dev_user' } });
    expect(pushed[1]!.approval.id).toBe(pushed[0]!.approval.id);
    const { id, shortId } = pushed[0]!.approval;

    one.send({ type: 'decide', ref: 'r1', id: shortId, decision: 'approve', reason: 'looks good' });
    const ok = await one.seen((f) => f.ref === 'r1');
    expect(ok).toMatchObject({ type: 'decide.ok', approval: { id, status: 'approved' } });

    const res = await call;
    expect(res.status).toBe(200);
    expect(res.body.result.content[0].text).toBe('wrote 3 bytes to x');
    expect(res.body.approval.decisions).toEqual([expect.objectContaining({ approver: 'admin_user', verdict: 'approve', reason: 'looks good' })]);

    for (const a of [one, two]) {
      const resolved = await a.seen((f) => f.type === 'approval.resolved' && f.approval.id === id);
      expect(resolved.approval.status).toBe('approved');
    }

    two.send({ type: 'decide', ref: 'late', id, decision: 'reject', reason: 'too late' });
    expect(await two.seen((f) => f.ref === 'late')).toMatchObject({ type: 'error', code: 'not_pending' });
  });

  it('needs two distinct approvals over the socket when the quorum is 2, pushing approval.updated after the first', async () => {
    await t.close();
    t = await startTestGateway({ env: { APPROVAL_QUORUM_HIGH: '2' } });
    const secondAdmin = await createUserWithToken(t.gateway.store, 'admin_two', 'admin', Date.now());
    const [one, two] = [await approver(t.tokens.admin), await approver(secondAdmin)];
    await Promise.all([hello(one), hello(two)]);
    const call = callWriteFile(t.tokens.dev);
    const { approval } = await one.seen((f) => f.type === 'approval.requested');

    one.send({ type: 'decide', ref: 1, id: approval.id, decision: 'approve', reason: 'first' });
    expect(await one.seen((f) => f.ref === 1)).toMatchObject({ type: 'decide.ok', approval: { status: 'pending' } });
    expect((await two.seen((f) => f.type === 'approval.updated')).approval.decisions).toHaveLength(1);
    one.send({ type: 'decide', ref: 2, id: approval.id, decision: 'approve', reason: 'again' });
    expect(await one.seen((f) => f.ref === 2)).toMatchObject({ type: 'error', code: 'already_decided' });

    two.send({ type: 'decide', ref: 3, id: approval.id, decision: 'approve', reason: 'second' });
    expect(await two.seen((f) => f.ref === 3)).toMatchObject({ type: 'decide.ok', approval: { status: 'approved' } });
    expect((await call).status).toBe(200);
  });

  it('refuses a guest socket with 4403, a developer with 4403 and a bad token with 4401', async () => {
    for (const [token, code] of [
      [t.tokens.guest, 4403],
      [t.tokens.dev, 4403],
      ['not-a-real-token', 4401],
    ] as const) {
      const a = await approver(token);
      expect((await a.closed).code).toBe(code);
      expect(a.frames).toEqual([expect.objectContaining({ type: 'error', code: code === 4403 ? 'forbidden' : 'unauthorized' })]);
      expect(a.frames.some((f) => f.type === 'hello')).toBe(false);
    }
  });

  it('authenticates by a first auth message', async () => {
    const a = await approver(undefined);
    a.send({ type: 'list', ref: 'early' });
    expect(await a.seen((f) => f.ref === 'early')).toMatchObject({ type: 'error', code: 'unauthorized' });
    a.send({ type: 'auth', token: t.tokens.admin });
    expect(await hello(a)).toMatchObject({ approver: { id: 'admin_user' } });
    // Authenticated in time: the auth timeout must not close it afterwards.
    await new Promise((r) => setTimeout(r, 400));
    expect(a.ws.readyState).toBe(a.ws.OPEN);
  });

  it('closes a socket with 4401 when no auth message comes within the auth timeout', async () => {
    const started = Date.now();
    const a = await approver(undefined);
    expect((await a.closed).code).toBe(4401);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(a.frames.at(-1)).toMatchObject({ type: 'error', code: 'unauthorized', message: 'authentication timed out' });
  });

  it('refuses an auth message with a guest token with 4403', async () => {
    const a = await approver(undefined);
    a.send({ type: 'auth', token: t.tokens.guest });
    expect((await a.closed).code).toBe(4403);
  });

  it('answers malformed frames with an error and keeps the socket and the server up', async () => {
    const a = await approver(t.tokens.admin);
    await hello(a);
    const errors = () => a.frames.filter((f) => f.type === 'error');
    a.send('{not json');
    a.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    a.send({ type: 'subscribe', ref: 'u' });
    a.send({ type: 'decide', ref: 'noreason', id: '12345678', decision: 'approve' });
    a.send({ type: 'decide', ref: 'blank', id: '12345678', decision: 'approve', reason: '   ' });
    a.send({ type: 'decide', ref: 'verdict', id: '12345678', decision: 'maybe', reason: 'x' });
    a.send('null');
    await eventually(() => errors().length === 7);
    expect(errors().every((f) => f.code === 'bad_message')).toBe(true);
    expect(errors().map((f) => f.ref)).toEqual([undefined, undefined, 'u', 'noreason', 'blank', 'verdict', undefined]);

    a.send({ type: 'decide', ref: 'missing', id: 'deadbeef', decision: 'approve', reason: 'x' });
    expect(await a.seen((f) => f.ref === 'missing')).toMatchObject({ type: 'error', code: 'not_found' });
    a.send({ type: 'list', ref: 'still-here' });
    expect(await a.seen((f) => f.ref === 'still-here')).toMatchObject({ type: 'pending', pending: [] });
    expect(a.ws.readyState).toBe(a.ws.OPEN);
    expect((await api(t.url, 'GET', '/health')).body.status).toBe('ok');
  });

  it('refuses self-approval over the socket with self_approval and leaves the request pending', async () => {
    const a = await approver(t.tokens.admin);
    await hello(a);
    const accepted = await callWriteFile(t.tokens.admin, 'mine', { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const { approval } = await a.seen((f) => f.type === 'approval.requested');
    a.send({ type: 'decide', ref: 'self', id: approval.shortId, decision: 'approve', reason: 'my own' });
    expect(await a.seen((f) => f.ref === 'self')).toMatchObject({ type: 'error', code: 'self_approval' });
    const [still] = await pendingApprovals(t);
    expect(still).toMatchObject({ id: approval.id, status: 'pending', decisions: [] });
  });

  it('counts authenticated approvers in /health approvers_online', async () => {
    const online = async () => (await api(t.url, 'GET', '/health')).body.approvers_online;
    expect(await online()).toBe(0);
    const one = await approver(t.tokens.admin);
    const two = await approver(t.tokens.admin);
    await approver(undefined); // connected but not authenticated: not an approver yet
    await Promise.all([hello(one), hello(two)]);
    expect(await online()).toBe(2);
    await one.close();
    await eventually(async () => (await online()) === 1);
  });

  it('pings every socket and closes one that stops answering, keeping the live ones', async () => {
    await t.close();
    t = await startTestGateway({ pingIntervalMs: 100 });
    const live = await approver(t.tokens.admin);
    const deaf = await connectApprover(t.wsUrl, t.tokens.admin, { autoPong: false });
    sockets.push(deaf);
    await Promise.all([hello(live), hello(deaf)]);
    let pings = 0;
    live.ws.on('ping', () => pings++);
    expect((await deaf.closed).code).toBe(1006);
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(live.ws.readyState).toBe(live.ws.OPEN);
    expect((await api(t.url, 'GET', '/health')).body.approvers_online).toBe(1);
  });

  it('loses nothing when an approver connection is killed: after reconnecting it lists the same pending requests', async () => {
    const first = await approver(t.tokens.admin);
    await hello(first);
    const waiting = callWriteFile(t.tokens.dev, 'held');
    // Pending before the next is made, so that the list's order (oldest first) is known.
    await eventually(() => first.frames.filter((f) => f.type === 'approval.requested').length === 1);
    const queued = await callWriteFile(t.tokens.dev, 'later', { prefer: 'respond-async' });
    await eventually(() => first.frames.filter((f) => f.type === 'approval.requested').length === 2);

    first.ws.terminate();
    await first.closed;
    // Made while no approver is connected: the reconnect's hello must still carry it.
    const whileAway = await callWriteFile(t.tokens.dev, 'while away', { prefer: 'respond-async' });
    const pendingBefore = (await pendingApprovals(t, 3)).map((a: { id: string }) => a.id);

    const again = await approver(t.tokens.admin);
    const { pending } = await hello(again);
    expect(pending.map((a: { id: string }) => a.id)).toEqual(pendingBefore);
    expect(pending.map((a: { arguments: { content: string } }) => a.arguments.content)).toEqual(['held', 'later', 'while away']);
    expect(queued.body.approval.id).toBe(pending[1].id);
    expect(whileAway.body.approval.id).toBe(pending[2].id);

    // And the held caller is still held: deciding from the new connection answers it.
    again.send({ type: 'decide', ref: 'go', id: pending[0].shortId, decision: 'approve', reason: 'after reconnect' });
    expect(await again.seen((f) => f.ref === 'go')).toMatchObject({ type: 'decide.ok' });
    expect((await waiting).status).toBe(200);
  });
});
