import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DAY_MS } from '../src/approvals/retention.js';
import { verifyAuditChain } from '../src/audit/audit.service.js';
import { PgTables } from '../src/db/pg-tables.js';
import { SqliteTables } from '../src/db/sqlite-tables.js';
import { approvalEnvelopeSchema, pendingListSchema } from '../src/approvals/approvals.schemas.js';
import { auditPageSchema } from '../src/audit/audit.schemas.js';
import { errorResponseSchema } from '../src/core/errors.schemas.js';
import { healthSchema } from '../src/http/health.schemas.js';
import { openApiPath } from '../src/http/openapi.js';
import { toolCallResultSchema, toolListSchema } from '../src/tools/tools.schemas.js';
import { createLogger } from '../src/logger.js';
import { api, eventually, ON_POSTGRES, ROOT, runCli, startTestGateway, tempDir, type TestGateway } from './helpers.js';

/** The value of one Prometheus sample, e.g. `toolgate_decisions_total{verdict="approve",sensitivity="HIGH"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function gateway(options: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
  const t = await startTestGateway(options);
  cleanups.push(() => t.close());
  return t;
}

function asyncCall(t: TestGateway, tool = 'write_file', token = t.tokens.dev) {
  return api(t.url, 'POST', `/tools/${tool}/call`, { token, body: { arguments: { path: 'x', content: 'abc' } }, headers: { prefer: 'respond-async' } });
}

describe('metrics', () => {
  it('moves the decision counter, the wait histogram, the route counter and the audit counter when an admin approves', async () => {
    const t = await gateway();
    const requested = await asyncCall(t);
    expect(requested.status).toBe(202);
    const id = requested.body.approval.id as string;

    let text = (await api(t.url, 'GET', '/metrics')).body as string;
    expect(sample(text, 'toolgate_pending_requests')).toBe(1);
    expect(sample(text, 'toolgate_decisions_total{verdict="approve",sensitivity="HIGH"}')).toBeUndefined();

    const decided = await api(t.url, 'POST', `/api/approvals/${id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
    expect(decided.status).toBe(200);
    await api(t.url, 'GET', `/api/approvals/${id}?wait=5`, { token: t.tokens.dev });

    const res = await api(t.url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    text = res.body as string;
    expect(sample(text, 'toolgate_decisions_total{verdict="approve",sensitivity="HIGH"}')).toBe(1);
    expect(sample(text, 'toolgate_decision_wait_seconds_count{outcome="approve",sensitivity="HIGH"}')).toBe(1);
    expect(sample(text, 'toolgate_pending_requests')).toBe(0);
    expect(sample(text, 'toolgate_approvers_online')).toBe(0);
    expect(sample(text, 'toolgate_upstream_calls_total{tool="write_file",outcome="ok"}')).toBe(1);
    expect(sample(text, 'toolgate_upstream_call_duration_seconds_count{tool="write_file"}')).toBe(1);
    // requested, approved, execution.started, execution.succeeded
    expect(sample(text, 'toolgate_audit_events_total')).toBeGreaterThanOrEqual(4);
    expect(sample(text, 'toolgate_http_requests_total{method="POST",route="/api/approvals/:id/approve",status="200"}')).toBe(1);
    expect(sample(text, 'toolgate_http_requests_total{method="POST",route="/tools/:name/call",status="202"}')).toBe(1);
    // Route patterns only: an id in a label would make a new series per request.
    expect(text).not.toContain(id);
  });

  it('counts rejections, cancellations and expiries apart, and 404s as one unmatched route', async () => {
    let now = Date.now();
    const t = await gateway({ clock: { now: () => now } });
    const a = (await asyncCall(t)).body.approval.id;
    await api(t.url, 'POST', `/api/approvals/${a}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
    const b = (await asyncCall(t)).body.approval.id;
    expect((await api(t.url, 'DELETE', `/api/approvals/${b}`, { token: t.tokens.dev })).status).toBe(200);
    const c = (await asyncCall(t)).body.approval.id;
    now += 301_000; // past APPROVAL_TIMEOUT (300 s)
    await t.gateway.jobs.tick();
    expect((await api(t.url, 'GET', `/api/approvals/${c}`, { token: t.tokens.dev })).body.approval.status).toBe('expired');
    await api(t.url, 'GET', '/no/such/path/1');
    await api(t.url, 'GET', '/no/such/path/2');

    const text = (await api(t.url, 'GET', '/metrics')).body as string;
    expect(sample(text, 'toolgate_decisions_total{verdict="reject",sensitivity="HIGH"}')).toBe(1);
    expect(sample(text, 'toolgate_cancelled_total{sensitivity="HIGH"}')).toBe(1);
    expect(sample(text, 'toolgate_expired_total{sensitivity="HIGH"}')).toBe(1);
    expect(sample(text, 'toolgate_http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(2);
  });

  it('keeps each gateway\u2019s counters apart when two run in one process', async () => {
    const one = await gateway();
    const two = await gateway();
    await api(one.url, 'GET', '/health');
    await api(one.url, 'GET', '/health');
    await api(two.url, 'GET', '/health');
    const series = 'toolgate_http_requests_total{method="GET",route="/health",status="200"}';
    expect(sample((await api(one.url, 'GET', '/metrics')).body, series)).toBe(2);
    expect(sample((await api(two.url, 'GET', '/metrics')).body, series)).toBe(1);
  });

  it('asks for METRICS_TOKEN as a bearer token when it is set', async () => {
    const t = await gateway({ env: { METRICS_TOKEN: 'scrape-secret-0123456789' } });
    expect((await api(t.url, 'GET', '/metrics')).status).toBe(401);
    expect((await api(t.url, 'GET', '/metrics', { token: 'wrong-secret-0123456789' })).status).toBe(401);
    expect((await api(t.url, 'GET', '/metrics', { token: t.tokens.admin })).status).toBe(401);
    const ok = await api(t.url, 'GET', '/metrics', { token: 'scrape-secret-0123456789' });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('toolgate_pending_requests');
  });
});

describe('request logs', () => {
  it('writes one line per request whose reqId is the X-Request-Id header and the audit event\u2019s httpRequestId', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const t = await gateway({ logger: createLogger('info', { destination, pretty: false }) });

    const res = await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: { message: 'hi' } } });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id')!;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);

    const line = await eventually(() => lines.find((l) => l.msg === 'request' && l.reqId === requestId));
    expect(line).toMatchObject({ method: 'POST', route: '/tools/:name/call', status: 200, userId: 'guest_user', level: 30 });
    expect(typeof line.durationMs).toBe('number');

    const audit = await api(t.url, 'GET', '/security/logs/audit?action=tool.executed&limit=5', { token: t.tokens.admin });
    const event = audit.body.events.find((e: { tool: string }) => e.tool === 'echo');
    expect(event.httpRequestId).toBe(requestId);

    // A client-chosen id is kept end to end too.
    await api(t.url, 'GET', '/tools', { token: t.tokens.guest, headers: { 'x-request-id': 'trace-42_a' } });
    expect(await eventually(() => lines.find((l) => l.reqId === 'trace-42_a'))).toMatchObject({ route: '/tools', status: 200 });
    // Health checks and scrapes are logged at debug only.
    await api(t.url, 'GET', '/health');
    expect(lines.some((l) => l.route === '/health')).toBe(false);
  });
});

describe('API document', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Doc = { openapi: string; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, unknown> } };

  it('is generated from the routes: every route the app serves is in /openapi.json, each answer with its schema', async () => {
    const t = await gateway();
    const res = await api<Doc>(t.url, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe('3.1.0');
    const served = new Set<string>();
    for (const route of t.gateway.app.routes) {
      if (route.method === 'ALL' && route.path.endsWith('*')) continue; // middleware
      const methods = route.method === 'ALL' ? ['get', 'post', 'delete'] : [route.method.toLowerCase()];
      for (const method of methods) served.add(`${method} ${openApiPath(route.path)}`);
    }
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`)));
    // Both ways: nothing served is undocumented, nothing documented is not served.
    expect([...served].filter((op) => !documented.has(op))).toEqual([]);
    expect([...documented].filter((op) => !served.has(op))).toEqual([]);
    expect(served.size).toBeGreaterThan(15);
    for (const [name, op] of Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([m, o]) => [`${m} ${path}`, o] as const))) {
      const answers = Object.entries(op.responses as Record<string, { content?: Record<string, { schema?: unknown }> }>);
      expect(answers.some(([status]) => /^(2\d\d|101|30[1278])$/.test(status)), name).toBe(true);
      for (const [status, answer] of answers) {
        // A switch of protocols and a redirect carry no body.
        if (status === '101' || /^3\d\d$/.test(status) || (name === 'get /ws/approvals' && status === '404') || (name.endsWith(' /mcp') && status === '200')) continue;
        expect(Object.values(answer.content ?? {})[0]?.schema, `${name} ${status}`).toBeDefined();
        if (Number(status) >= 400 && name !== 'get /health') expect(answer.content!['application/json']!.schema, `${name} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
    expect(doc.paths['/tools']!.get.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ToolList' });
    expect(doc.paths['/tools/{name}/call']!.post.responses['202'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ApprovalEnvelope' });
  });

  it('documents answers that match what the routes really send (each validated against its documented schema)', async () => {
    const t = await gateway();
    const doc = (await api<Doc>(t.url, 'GET', '/openapi.json')).body;
    // The zod schemas the document was generated from; a schema drops fields it does not know, so equality means "nothing undocumented".
    const schemas = {
      ToolList: toolListSchema,
      ToolCallResult: toolCallResultSchema,
      ApprovalEnvelope: approvalEnvelopeSchema,
      PendingList: pendingListSchema,
      AuditPage: auditPageSchema,
      Health: healthSchema,
      Error: errorResponseSchema,
    };
    const documented = async (name: keyof typeof schemas, body: unknown) => {
      expect(doc.components.schemas[name], name).toBeDefined();
      const parsed = schemas[name].safeParse(body);
      expect(parsed.error, name).toBeUndefined();
      expect(parsed.data, name).toEqual(body);
    };
    await documented('ToolList', (await api(t.url, 'GET', '/tools', { token: t.tokens.dev })).body);
    await documented('ToolCallResult', (await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: { arguments: { message: 'hi' } } })).body);
    const accepted = await asyncCall(t);
    await documented('ApprovalEnvelope', accepted.body);
    await documented('PendingList', (await api(t.url, 'GET', '/api/approvals/pending', { token: t.tokens.admin })).body);
    await documented('ApprovalEnvelope', (await api(t.url, 'POST', `/api/approvals/${accepted.body.approval.id}/reject`, { token: t.tokens.admin, body: { reason: 'no' } })).body);
    await documented('AuditPage', (await api(t.url, 'GET', '/security/logs/audit?limit=5', { token: t.tokens.admin })).body);
    await documented('Health', (await api(t.url, 'GET', '/health')).body);
    const invalid = await api(t.url, 'POST', `/api/approvals/${accepted.body.approval.id}/approve`, { token: t.tokens.admin, body: { reason: '' } });
    expect(invalid.status).toBe(400);
    await documented('Error', invalid.body);
    const capped = await api(t.url, 'GET', '/api/approvals/pending?limit=0', { token: t.tokens.admin });
    await documented('Error', capped.body);
  });

  it('describes request bodies and queries with the zod schemas that validate them', async () => {
    const t = await gateway();
    const doc = (await api(t.url, 'GET', '/openapi.json')).body;
    const approve = doc.paths['/api/approvals/{id}/approve'].post;
    expect(approve.requestBody.content['application/json'].schema).toMatchObject({
      type: 'object',
      required: ['reason'],
      properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } },
    });
    expect(approve.parameters).toContainEqual(expect.objectContaining({ name: 'id', in: 'path', required: true }));
    const pending = doc.paths['/api/approvals/pending'].get;
    expect(pending.parameters).toContainEqual(expect.objectContaining({ name: 'limit', in: 'query', schema: expect.objectContaining({ maximum: 1000 }) }));
    // The route refuses what the document says it refuses.
    const a = (await asyncCall(t)).body.approval.id;
    const bad = await api(t.url, 'POST', `/api/approvals/${a}/approve`, { token: t.tokens.admin, body: { reason: '' } });
    expect(bad.status).toBe(400);
  });

  it('serves a self-contained HTML page at /docs', async () => {
    const t = await gateway();
    const res = await api(t.url, 'GET', '/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = res.body as string;
    for (const path of ['/tools/{name}/call', '/api/approvals/{id}/approve', '/ws/approvals', '/mcp', '/metrics']) expect(html).toContain(path);
    expect(html).not.toMatch(/<script|src="http|href="http/);
  });
});

describe('retention', () => {
  it('deletes old decided requests and prunes old audit events in the retention job, at most every few minutes, keeping the chain verifiable', async () => {
    let now = Date.UTC(2025, 0, 1);
    const t = await gateway({ clock: { now: () => now } });
    const store = t.gateway.store;
    const rejected = (await asyncCall(t)).body.approval.id;
    await api(t.url, 'POST', `/api/approvals/${rejected}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
    const left = (await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: {} } })).body.approval.id;
    const deletes = vi.spyOn((ON_POSTGRES ? PgTables : SqliteTables).prototype as SqliteTables, 'deleteDecidedBefore');

    now += 10 * DAY_MS;
    await t.gateway.jobs.tick();
    expect(deletes).toHaveBeenCalledTimes(1);
    expect((await store.approvals.request(rejected))?.status).toBe('rejected'); // 10 days < 30
    expect((await store.approvals.request(left))?.status).toBe('expired');

    now += 60_000;
    await t.gateway.jobs.tick();
    expect(deletes).toHaveBeenCalledTimes(1); // not every tick

    now += 21 * DAY_MS; // 31 days after the requests
    const fresh = (await asyncCall(t)).body.approval.id;
    await t.gateway.jobs.tick();
    expect(deletes).toHaveBeenCalledTimes(2);
    expect((await store.approvals.request(rejected))).toBeUndefined();
    expect((await store.approvals.request(left))).toBeUndefined();
    expect((await store.approvals.request(fresh))?.status).toBe('pending'); // pending and recent: kept
    expect((await api(t.url, 'GET', `/api/approvals/${rejected}`, { token: t.tokens.admin })).status).toBe(404);

    const firstSeq = (await store.audit.auditPage({ limit: 1000 })).at(-1)!.seq;
    now += 60 * DAY_MS; // 91 days after the first events; the fresh request is 60 days old
    await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: {} } });
    await t.gateway.jobs.tick();
    const remaining = (await store.audit.auditPage({ limit: 1000 }));
    expect(remaining.at(-1)!.seq).toBeGreaterThan(firstSeq);
    expect(remaining.every((e) => e.at >= now - 90 * DAY_MS)).toBe(true);
    const verified = await verifyAuditChain(store);
    expect(verified).toMatchObject({ ok: true });
    expect(verified.prunedThrough).toBe(remaining.at(-1)!.seq - 1);
    // Appends after pruning still chain.
    await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: {} } });
    expect((await verifyAuditChain(store)).ok).toBe(true);
    deletes.mockRestore();
  });
});

describe('backup and integrity', { tags: ['process'] }, () => {
  it('takes a backup with `toolgate db backup` while serving that restores into a working gateway', async () => {
    const t = await gateway();
    const pending = (await asyncCall(t)).body.approval.id;
    await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: {} } });
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const backupPath = join(dir.path, 'toolgate-backup.db');

    // Keep the gateway busy while the backup runs.
    const busy = Promise.all(Array.from({ length: 20 }, () => api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: {} } })));
    const backup = await runCli(['db', 'backup', backupPath], { DATABASE_PATH: t.dbPath });
    await busy;
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    expect(backup.stdout).toContain('check ok');
    expect((await runCli(['db', 'backup', backupPath], { DATABASE_PATH: t.dbPath })).status).toBe(1); // never overwrites silently

    const restored = await gateway({ dir: dir.path, dbPath: backupPath });
    const list = await api(restored.url, 'GET', '/api/approvals/pending', { token: t.tokens.admin });
    expect(list.status).toBe(200);
    expect(list.body.pending_approvals.map((a: { id: string }) => a.id)).toContain(pending);
    const approved = await api(restored.url, 'POST', `/api/approvals/${pending}/approve`, { token: t.tokens.admin, body: { reason: 'restored' } });
    expect(approved.status).toBe(200);
    expect((await api(restored.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: { message: 'back' } } })).status).toBe(200);
    expect((await verifyAuditChain(restored.gateway.store)).ok).toBe(true);
  });

  it('restores a backup with the guide\u2019s own restore commands after a clean stop, which left no -wal to move', async () => {
    const dir = tempDir();
    const backups = tempDir();
    cleanups.push(() => dir.remove(), () => backups.remove());
    const t = await startTestGateway({ dir: dir.path });
    const kept = (await asyncCall(t)).body.approval.id;
    const backupPath = join(backups.path, 'toolgate-2026-01-31.db');
    expect((await runCli(['db', 'backup', backupPath], { DATABASE_PATH: t.dbPath })).status).toBe(0);
    const after = (await asyncCall(t)).body.approval.id; // made after the backup: the restore drops it
    await t.close();
    expect(existsSync(`${t.dbPath}-wal`)).toBe(false);

    // Step 3 of "Backup and restore" in docs/operations.md, as written there, with this test's paths.
    const guide = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
    const block = /```sh\n( *cd \/data[^\n]*\n *for f in [\s\S]*?)```/.exec(guide)?.[1];
    expect(block).toBeDefined();
    const script = block!.replace(/^ *cd \/data.*$/m, `cd '${dir.path}'`).replace('/backups/toolgate-2026-01-31.db', `'${backupPath}'`);
    const restore = spawnSync('sh', ['-ec', script], { encoding: 'utf8' });
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(existsSync(join(dir.path, 'toolgate.db.broken'))).toBe(true);

    const restored = await gateway({ dir: dir.path });
    const pending = (await api(restored.url, 'GET', '/api/approvals/pending', { token: t.tokens.admin })).body.pending_approvals.map((a: { id: string }) => a.id);
    expect(pending).toContain(kept);
    expect(pending).not.toContain(after);
  });

  it('finds an altered audit row with `toolgate db check`: exit 1, naming its seq', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const t = await startTestGateway({ dir: dir.path });
    const id = (await asyncCall(t)).body.approval.id;
    await api(t.url, 'POST', `/api/approvals/${id}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
    await t.close();

    const clean = await runCli(['db', 'check'], { DATABASE_PATH: t.dbPath });
    expect(clean.status).toBe(0);
    expect(clean.stdout).toContain('integrity    ok');
    expect(clean.stdout).toMatch(/requests {5}pending 0, approved 0, rejected 1/);
    expect(clean.stdout).toContain('all checks passed');

    t.sql().prepare(`update audit_events set details = '{"reason":"yes"}' where seq = 2`).run();

    const broken = await runCli(['db', 'check'], { DATABASE_PATH: t.dbPath });
    expect(broken.status).toBe(1);
    expect(broken.stdout).toContain('audit chain  BROKEN at event 2');
    expect(broken.stdout).toContain('PROBLEMS');
  });

  it('refuses to check a database file that does not exist instead of creating it', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const res = await runCli(['db', 'check'], { DATABASE_PATH: join(dir.path, 'nope.db') });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('no database at');
  });
});

describe('rollback: APPROVAL_WORKFLOW_ENABLED=false', () => {
  it('runs a HIGH tool without approval and records it as unapproved', async () => {
    const t = await gateway({ env: { APPROVAL_WORKFLOW_ENABLED: 'false' } });
    const res = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'x', content: 'abc' } } });
    expect(res.status).toBe(200);
    expect(res.body.result.content[0].text).toBe('wrote 3 bytes to x');
    const audit = await api(t.url, 'GET', '/security/logs/audit?action=tool.executed&tool=write_file', { token: t.tokens.admin });
    expect(audit.body.events[0].details).toMatchObject({ sensitivity: 'HIGH', unapproved: true, reason: 'approval workflow disabled' });
  });

  it('expires the requests left pending from before on start, with the reason', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const before = await startTestGateway({ dir: dir.path });
    const id = (await asyncCall(before)).body.approval.id;
    await before.close();

    const after = await gateway({ dir: dir.path, env: { APPROVAL_WORKFLOW_ENABLED: 'false' } });
    const res = await api(after.url, 'GET', `/api/approvals/${id}`, { token: before.tokens.dev });
    expect(res.body.approval).toMatchObject({ status: 'expired', statusReason: 'approval workflow disabled' });
    const audit = await api(after.url, 'GET', '/security/logs/audit?action=approval.expired', { token: before.tokens.admin });
    expect(audit.body.events[0]).toMatchObject({ requestId: id, actor: 'system', details: { reason: 'approval workflow disabled' } });
    expect((await api(after.url, 'GET', '/health')).body).toMatchObject({ approval_workflow: false, pending: 0 });
  });
});
