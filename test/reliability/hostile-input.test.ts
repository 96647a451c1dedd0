import fc from 'fast-check';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { api, startTestGateway, type TestGateway } from '../helpers.js';
import { connectApprover, type Approver } from '../ws-client.js';

const KNOWN_TOOLS = new Set(['echo', 'list_files', 'write_file', 'git_commit', 'execute_bash', 'fail_tool', 'slow', 'count', 'slow_count', 'medium_tool', 'crash']);
const FAKE_ID = '99999999-9999-4999-8999-999999999999';
const NOT_AN_ID_CHAR = /[^0-9a-fA-F-\s]/;

interface HttpCase {
  method: string;
  path: string;
  body?: string | Uint8Array<ArrayBuffer>;
  headers?: Record<string, string>;
  token?: 'admin' | 'dev' | 'none';
}

const seg = (s: string) => encodeURIComponent(s);
const encodable = (s: string) => {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false; // a lone surrogate cannot be put in a URL at all
  }
};

/** Hand-written hostile HTTP inputs. */
function handWritten(): HttpCase[] {
  const badBodies = [
    '{', '}', '[]', 'null', '"text"', '123', 'true', '{"arguments": []}', '{"arguments": "x"}', '{"arguments": null}', '{"arguments": 5}',
    '{"extra": 1}', '{"arguments": {}, "x": 1}', '\u0000', '\uFEFF{"arguments":{}}x', '{"arguments": {"a": 1e999', `${'['.repeat(5000)}${']'.repeat(5000)}`,
    `{"a":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`, '{"__proto__": {"admin": true}}', '{"constructor": {"prototype": {}}}', "{'arguments': {}}",
    '{"arguments": {}} {"arguments": {}}', 'NaN', '{"arguments": {"x": NaN}}', '\ud800', '{"arguments":{"s":"\\ud800"}}garbage',
  ];
  const cases: HttpCase[] = [];
  for (const body of badBodies) {
    cases.push({ method: 'POST', path: '/tools/echo/call', body });
    cases.push({ method: 'POST', path: '/api/approvals', body });
    cases.push({ method: 'POST', path: `/api/approvals/${FAKE_ID}/approve`, body });
  }
  const decideBodies = ['{}', '{"reason": ""}', '{"reason": "   "}', '{"reason": 5}', '{"reason": null}', `{"reason": "${'r'.repeat(1001)}"}`, '{"reason": "ok", "verdict": "approve"}', '{"reason": ["a"]}'];
  for (const body of decideBodies) for (const verdict of ['approve', 'reject']) cases.push({ method: 'POST', path: `/api/approvals/${FAKE_ID}/${verdict}`, body });
  const toolNames = [
    '../../etc/passwd', '..%2F..%2Fetc%2Fpasswd', '%2e%2e%2f%2e%2e%2fetc%2fpasswd', '..', '.', '%00', 'echo%00', 'echo%0d%0aX-Injected:%201', 'a'.repeat(201), 'a'.repeat(5000),
    seg('écho'), seg('🙂'), seg('\u202eohce'), seg('echo;rm -rf /'), '*', seg('fs.*'), seg('echo '), seg(' echo'), seg('ECHO'), '%ED%A0%80', '%FF', '%', '%%', seg('e\u0301cho'),
    seg('\u0065\u0063\u0068\u006f\u200b'), seg('<script>'), seg("' OR 1=1 --"), seg('null'), seg('__proto__'), seg('constructor'),
  ];
  for (const name of toolNames) {
    cases.push({ method: 'POST', path: `/tools/${name}/call`, body: '{"arguments":{}}' });
  }
  for (const name of ['../../etc/passwd', 'a'.repeat(5000), '\u0000', '__proto__', 'fs.*', '*', '%', "'; DROP TABLE users; --", '\ud83d\ude42', '']) {
    cases.push({ method: 'POST', path: '/api/approvals', body: JSON.stringify({ tool: name, arguments: {} }) });
  }
  const ids = [
    '%', '_', '%25', '%5F', '________', '%25%25%25%25%25%25%25%25', '0000000%25', '0000000_', seg("' OR 1=1 --"), seg("'; DROP TABLE approval_requests; --"), seg('" OR ""="'),
    'aaaaaaa', 'aaaaaaaag', 'AAAAAAAA', seg('aaaaaaaa '), '-'.repeat(8), '-'.repeat(36), 'f'.repeat(37), 'f'.repeat(5000), '..', '..%2F..%2F', seg('０１２３４５６７'), seg('\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667'),
    '%00%00%00%00%00%00%00%00', seg('12345678\u0000'), 'pending%2F..', FAKE_ID,
  ];
  for (const id of ids) {
    cases.push({ method: 'GET', path: `/api/approvals/${id}` });
    cases.push({ method: 'DELETE', path: `/api/approvals/${id}`, token: 'dev' });
    cases.push({ method: 'POST', path: `/api/approvals/${id}/approve`, body: '{"reason":"hostile"}' });
    cases.push({ method: 'POST', path: `/api/approvals/${id}/reject`, body: '{"reason":"hostile"}' });
  }
  for (const q of ['limit=-1', 'limit=0', 'limit=abc', 'limit=1e9', 'limit=1.5', 'limit=', 'evil=1', 'limit=%00', `limit=${'9'.repeat(400)}`]) {
    cases.push({ method: 'GET', path: `/api/approvals/pending?${q}` });
  }
  for (const q of ['wait=-5', 'wait=abc', 'wait=61', 'wait=1e400', 'wait=NaN', 'x=1']) cases.push({ method: 'GET', path: `/api/approvals/${FAKE_ID}?${q}` });
  for (const q of ['limit=-1', 'limit=abc', 'since=garbage', 'before=x', 'user=' + 'u'.repeat(5000), 'evil=1']) cases.push({ method: 'GET', path: `/security/logs/audit?${q}` });
  const authHeaders = ['Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', `Bearer ${'a'.repeat(10_000)}`, 'Bearer tg_\u00ff', 'Bearer tg_x tg_y', 'bearer', 'Token tg_abc', 'Bearer %00', 'Bearer ../../'];
  for (const authorization of authHeaders) {
    cases.push({ method: 'GET', path: '/tools', headers: { authorization }, token: 'none' });
    cases.push({ method: 'POST', path: '/tools/echo/call', body: '{"arguments":{}}', headers: { authorization }, token: 'none' });
  }
  for (const method of ['PUT', 'PATCH', 'DELETE']) cases.push({ method, path: '/tools/echo/call', body: '{}' });
  cases.push({ method: 'GET', path: '/tools/echo/call' });
  cases.push({ method: 'POST', path: '/tools/echo/call', body: new Uint8Array([0xff, 0xfe, 0x00, 0x01, 0xc3, 0x28]) });
  cases.push({ method: 'POST', path: '/tools/echo/call', body: `{"arguments":{"s":"${'x'.repeat(2 * 1024 * 1024)}"}}` });
  return cases;
}

/** Generated hostile HTTP inputs, each invalid by construction. */
function generated(seed: number): HttpCase[] {
  const opts = { seed };
  const wrongArguments = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 5 }));
  const bodies = fc.sample(
    fc.oneof(
      fc.jsonValue().filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)),
      fc.record({ arguments: wrongArguments }),
      fc.dictionary(fc.string({ minLength: 1 }).filter((k) => k !== 'arguments'), fc.jsonValue(), { minKeys: 1, maxKeys: 4 }),
    ),
    { ...opts, numRuns: 80 },
  ).map((v): HttpCase => ({ method: 'POST', path: '/tools/echo/call', body: JSON.stringify(v) ?? 'undefined' }));
  const names = fc.sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }).filter((s) => !KNOWN_TOOLS.has(s) && encodable(s)), { ...opts, numRuns: 60 }).map(
    (name): HttpCase => ({ method: 'POST', path: `/tools/${seg(name)}/call`, body: '{"arguments":{}}' }),
  );
  const decisionBodies = fc.sample(
    fc.record({ tool: fc.string({ unit: 'grapheme', maxLength: 250 }).filter((s) => !KNOWN_TOOLS.has(s)), arguments: fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }) }),
    { ...opts, numRuns: 40 },
  ).map((v): HttpCase => ({ method: 'POST', path: '/api/approvals', body: JSON.stringify(v) }));
  const ids = fc.sample(
    fc.string({ unit: fc.constantFrom(...'0123456789abcdef-%_\'"; ()*\\/.,'.split('')), minLength: 1, maxLength: 40 }).filter((s) => NOT_AN_ID_CHAR.test(s) && s.trim() !== ''),
    { ...opts, numRuns: 60 },
  ).map((id): HttpCase => ({ method: 'POST', path: `/api/approvals/${seg(id)}/approve`, body: '{"reason":"x"}' }));
  const reasons = fc.sample(fc.jsonValue().filter((v) => typeof v !== 'string'), { ...opts, numRuns: 30 }).map(
    (reason): HttpCase => ({ method: 'POST', path: `/api/approvals/${FAKE_ID}/reject`, body: JSON.stringify({ reason }) }),
  );
  return [...bodies, ...names, ...decisionBodies, ...ids, ...reasons];
}

describe('hostile input', () => {
  let t: TestGateway;
  let logged = '';
  const sockets: Approver[] = [];
  beforeAll(async () => {
    const log = new PassThrough();
    log.on('data', (d) => (logged += d));
    t = await startTestGateway({
      logger: createLogger('warn', { destination: log }),
      env: { RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0', APPROVAL_MAX_PENDING: '1000' },
    });
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await t?.close();
  });

  it('answers every one of 300+ malformed HTTP inputs with a 4xx and the contract error body, never a 500', async () => {
    // A real request exists, so that id lookups have something to (not) match.
    await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'p', content: 'c' } }, headers: { prefer: 'respond-async' } });
    const cases = [...handWritten(), ...generated(20240601)];
    const failures: string[] = [];
    for (const c of cases) {
      const token = c.token === 'none' ? undefined : c.token === 'dev' ? t.tokens.dev : t.tokens.admin;
      const res = await fetch(`${t.url}${c.path}`, {
        method: c.method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', ...c.headers },
        ...(c.body !== undefined ? { body: c.body } : {}),
      });
      const text = await res.text();
      let body: any;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      const ok = res.status >= 400 && res.status < 500 && typeof body?.error?.code === 'string' && typeof body?.error?.message === 'string';
      if (!ok) failures.push(`${c.method} ${c.path.slice(0, 120)} ${String(c.body).slice(0, 80)} -> ${res.status} ${text.slice(0, 200)}`);
    }
    expect(failures).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(logged).not.toMatch(/unhandled error/);
    expect((await api(t.url, 'GET', '/health')).body.status).toBe('ok');
    console.info(`hostile HTTP inputs: ${cases.length}`);
  }, 60_000);

  it('answers every malformed WebSocket frame with an error frame and keeps the socket open, or closes it with a clear code', async () => {
    const approver = await connectApprover(t.wsUrl, t.tokens.admin);
    sockets.push(approver);
    await approver.next((f) => f.type === 'hello');
    const frames: (string | Buffer)[] = [
      'not json', '{', '[]', 'null', '42', '"decide"', '{}', '{"type":"nope"}', '{"type":"decide"}', '{"type":"decide","id":"x","decision":"approve"}',
      '{"type":"decide","id":"x","decision":"maybe","reason":"r"}', `{"type":"decide","id":"${FAKE_ID}","decision":"approve","reason":"${'r'.repeat(1001)}"}`,
      '{"type":"decide","id":"%","decision":"approve","reason":"r"}', '{"type":"decide","id":"________","decision":"approve","reason":"r"}',
      `{"type":"decide","id":"' OR 1=1 --","decision":"reject","reason":"r"}`, `{"type":"decide","id":"${'a'.repeat(65)}","decision":"approve","reason":"r"}`,
      `{"type":"decide","id":"${FAKE_ID}","decision":"approve","reason":"r"}`, '{"type":"decide","ref":{"x":1},"id":"x","decision":"approve","reason":"r"}',
      '{"type":"auth","token":"tg_whatever"}', '{"type":"list","limit":-1}', '{"type":"list","limit":"all"}', '{"type":"list","extra":true}', '{"type":"hello"}',
      '{"type":"decide.ok"}', '\u0000', '\ud800', '{"type":"\u202edecide"}', Buffer.from([0, 1, 2, 255]), Buffer.from('{"type":"list"}'),
    ];
    const generatedFrames = fc.sample(fc.jsonValue(), { seed: 7, numRuns: 60 }).map((v) => JSON.stringify(v));
    const all = [...frames, ...generatedFrames];
    for (const frame of all) {
      approver.frames.length = 0;
      approver.ws.send(frame, { binary: Buffer.isBuffer(frame) });
      const answer = await approver.next(() => true);
      expect(['error', 'pending'], JSON.stringify(answer)).toContain(answer.type);
      if (answer.type === 'error') expect(answer).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    }
    expect(approver.ws.readyState).toBe(1);
    // Still a working approver channel after all that.
    approver.ws.send(JSON.stringify({ type: 'list', ref: 'after' }));
    expect((await approver.next((f) => f.ref === 'after')).type).toBe('pending');
    console.info(`hostile WebSocket frames: ${all.length}`);

    // An oversized frame closes with 1009 (message too big); out-of-order and bad auth close with 4401.
    const big = await connectApprover(t.wsUrl, t.tokens.admin);
    big.ws.send('x'.repeat(128 * 1024));
    expect((await big.closed).code).toBe(1009);
    const early = await connectApprover(t.wsUrl);
    early.ws.send(JSON.stringify({ type: 'decide', ref: 1, id: FAKE_ID, decision: 'approve', reason: 'r' }));
    expect(await early.next((f) => f.ref === 1)).toMatchObject({ type: 'error', code: 'unauthorized' });
    early.ws.send(JSON.stringify({ type: 'auth', token: 'tg_wrong' }));
    expect((await early.closed).code).toBe(4401);
    const binaryAuth = await connectApprover(t.wsUrl);
    binaryAuth.ws.send(Buffer.from(JSON.stringify({ type: 'auth', token: t.tokens.admin })));
    expect(await binaryAuth.next(() => true)).toMatchObject({ type: 'error', code: 'bad_message' });
    binaryAuth.close();
    expect((await api(t.url, 'GET', '/health')).body.status).toBe('ok');
    expect(logged).not.toMatch(/unhandled error|"level":50/);
  }, 60_000);
});
