import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { isLoopbackHost } from '../../src/main.js';
import { toolgateFileSchema, type ToolgateFile } from '../../src/tools/gateway-file.js';
import { counterLines } from '../chaos/child-gateway.js';
import { api, fixtureToolgateFile, pendingApprovals, runCli, startTestGateway, tempDir, type TestGateway } from '../helpers.js';

/** The fixture upstream with its annotations not trusted (the default for an upstream in toolgate.json). */
function untrustedFixture(defaults: ToolgateFile['defaults'] = {}): ToolgateFile {
  const file = fixtureToolgateFile();
  return { ...file, upstreams: file.upstreams.map((u) => ({ ...u, trustAnnotations: false })), defaults };
}

async function toolsOf(t: TestGateway, token: string): Promise<Map<string, { sensitivity: string; requiresApproval: boolean }>> {
  const res = await api(t.url, 'GET', '/tools', { token });
  expect(res.status).toBe(200);
  return new Map(res.body.tools.map((x: { name: string; sensitivity: string; requiresApproval: boolean }) => [x.name, x]));
}

describe('honest states: an execution cut off by a crash is interrupted, not failed', { tags: ['process'] }, () => {
  it('records a running execution of a crashed gateway as interrupted on every live gateway, answers long-polls at once, audits it, and keeps a never-started wait failed', async () => {
    const dir = tempDir();
    const counter = join(dir.path, 'count.txt');
    const file = fixtureToolgateFile({ FIXTURE_COUNTER_FILE: counter });
    const options = { dir: dir.path, file, upstream: 'stdio' as const, env: { APPROVAL_POLLING_INTERVAL: '0.1' }, instanceStaleAfterMs: 1500 };
    const a = await startTestGateway(options);
    const b = await startTestGateway(options);
    const c = await startTestGateway(options);
    const { dev, admin } = a.tokens;
    try {
      // On a: an async run in progress, and a caller held for a write that nobody has decided yet.
      const created = await api(a.url, 'POST', '/tools/slow_count/call', { token: dev, body: { arguments: { tag: 'slow', ms: 5000 } }, headers: { prefer: 'respond-async' } });
      const runningId: string = created.body.approval.id;
      expect((await api(a.url, 'POST', `/api/approvals/${runningId}/approve`, { token: admin, body: { reason: 'go' } })).status).toBe(200);
      expect((await a.gateway.store.approvals.request(runningId))?.executionStatus).toBe('running');
      const held = api(a.url, 'POST', '/tools/write_file/call', { token: dev, body: { arguments: { path: 'x', content: 'y' } } }).catch((e: Error) => e);
      const [waiting] = (await pendingApprovals(a)) as { id: string; mode: string }[];
      expect(waiting!.mode).toBe('wait');

      // Long-polls on the two live gateways: whichever recovers a, the other learns it from the audit feed.
      const started = Date.now();
      const polls = [b, c].map((t) => api(t.url, 'GET', `/api/approvals/${runningId}?wait=30`, { token: dev }));
      // crash() closes a's database file before its first await: from here on a writes nothing.
      const crashed = a.gateway.crash();
      // Approved after its caller died, before a is declared dead: it never started.
      const late = await api(b.url, 'POST', `/api/approvals/${waiting!.id}/approve`, { token: admin, body: { reason: 'late' } });
      expect(late.body.approval).toMatchObject({ status: 'approved', execution: { status: 'pending' } });
      await crashed;
      await held;

      for (const res of await Promise.all(polls)) {
        expect(res.status).toBe(200);
        expect(res.body.approval.execution).toMatchObject({ status: 'interrupted', error: expect.stringContaining('gateway restarted while the tool was running; it may or may not have run') });
      }
      console.info(`crash → interrupted seen by both long-polls: ${Date.now() - started} ms (stale threshold 1500 ms)`);
      expect(Date.now() - started).toBeLessThan(20_000); // answered by the event, not by the 30 s wait running out
      const never = (await b.gateway.store.approvals.request(waiting!.id))!;
      expect(never).toMatchObject({ status: 'approved', executionStatus: 'failed', executionError: 'gateway restarted before the tool ran' });

      const audit = await api(b.url, 'GET', '/security/logs/audit?action=execution.interrupted', { token: admin });
      expect(audit.body.events).toHaveLength(1);
      expect(audit.body.events[0]).toMatchObject({ requestId: runningId, status: 'interrupted', actor: 'system' });

      // Never retried: it stays interrupted on later sweeps, and the tool was not run again here.
      await new Promise((r) => setTimeout(r, 500));
      expect((await c.gateway.store.approvals.request(runningId))?.executionStatus).toBe('interrupted');
      expect(counterLines(counter)).toEqual([]);

      // The approver's CLI says so (the real binary, over HTTP).
      const shown = await runCli(['approvals', 'show', runningId.slice(0, 8)], { TOOLGATE_URL: b.url, TOOLGATE_TOKEN: admin });
      expect(shown.status, shown.stderr).toBe(0);
      expect(shown.stdout).toMatch(/execution\s+interrupted — gateway restarted while the tool was running; it may or may not have run/);
    } finally {
      await c.close();
      await b.close();
      await a.close();
      dir.remove();
    }
  }, 60_000);

  it('marks its own running execution interrupted at a graceful shutdown, audited, still interrupted after the next start', async () => {
    const dir = tempDir();
    const file = fixtureToolgateFile({ FIXTURE_COUNTER_FILE: join(dir.path, 'count.txt') });
    const first = await startTestGateway({ dir: dir.path, file, upstream: 'stdio' });
    try {
      const created = await api(first.url, 'POST', '/tools/slow_count/call', { token: first.tokens.dev, body: { arguments: { tag: 'slow', ms: 10_000 } }, headers: { prefer: 'respond-async' } });
      const id: string = created.body.approval.id;
      await api(first.url, 'POST', `/api/approvals/${id}/approve`, { token: first.tokens.admin, body: { reason: 'go' } });
      expect((await first.gateway.store.approvals.request(id))?.executionStatus).toBe('running');
      await first.gateway.close();
      const second = await startTestGateway({ dir: dir.path, file, upstream: 'stdio' });
      try {
        expect((await second.gateway.store.approvals.request(id))).toMatchObject({
          executionStatus: 'interrupted',
          executionError: 'gateway shut down while the tool was running; it may or may not have run',
        });
        const audit = await api(second.url, 'GET', '/security/logs/audit?action=execution.interrupted', { token: first.tokens.admin });
        expect(audit.body.events.map((e: { requestId: string }) => e.requestId)).toEqual([id]);
      } finally {
        await second.close();
      }
    } finally {
      dir.remove();
    }
  });
});

describe('honest states: an upstream that is not trusted cannot declare its own tools harmless', () => {
  it('makes a tool that claims readOnlyHint HIGH when its upstream is not trusted, so it waits for approval', async () => {
    const t = await startTestGateway({ file: untrustedFixture() });
    try {
      const tools = await toolsOf(t, t.tokens.admin);
      expect(tools.get('echo')).toMatchObject({ sensitivity: 'HIGH', requiresApproval: true }); // readOnlyHint: true, not believed
      expect(tools.get('medium_tool')?.sensitivity).toBe('HIGH'); // destructiveHint: false, not believed
      expect(tools.get('write_file')?.sensitivity).toBe('HIGH'); // named by the catalog
      expect(tools.get('list_files')?.sensitivity).toBe('LOW'); // named by the catalog
      expect((await toolsOf(t, t.tokens.guest)).has('echo')).toBe(false);
      const call = await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: { arguments: { message: 'hi' } }, headers: { prefer: 'respond-async' } });
      expect(call.status).toBe(202);
      expect(call.body.approval).toMatchObject({ status: 'pending', sensitivity: 'HIGH' });
    } finally {
      await t.close();
    }
  });

  it('takes the sensitivity from the annotations of a trusted upstream', async () => {
    const t = await startTestGateway(); // the fixture, with "trustAnnotations": true
    try {
      const tools = await toolsOf(t, t.tokens.guest);
      expect(tools.get('echo')).toMatchObject({ sensitivity: 'LOW', requiresApproval: false });
      expect((await toolsOf(t, t.tokens.dev)).get('medium_tool')?.sensitivity).toBe('MEDIUM');
      const call = await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: { message: 'hi' } } });
      expect(call.status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('uses defaults.sensitivity from toolgate.json for tools nothing else settles', async () => {
    const t = await startTestGateway({ file: untrustedFixture({ sensitivity: 'CRITICAL' }) });
    try {
      const tools = await toolsOf(t, t.tokens.admin);
      expect(tools.get('echo')?.sensitivity).toBe('CRITICAL');
      expect(tools.get('slow')?.sensitivity).toBe('CRITICAL');
      expect(tools.get('list_files')?.sensitivity).toBe('LOW'); // the catalog still wins
      expect((await toolsOf(t, t.tokens.dev)).has('echo')).toBe(false); // CRITICAL → admin only
    } finally {
      await t.close();
    }
  });

  it('validates trustAnnotations and defaults.sensitivity in toolgate.json', () => {
    const upstream = { name: 'fs', command: 'node' };
    expect(toolgateFileSchema.parse({ upstreams: [upstream] }).upstreams[0]).not.toHaveProperty('trustAnnotations', true);
    expect(toolgateFileSchema.safeParse({ upstreams: [{ ...upstream, trustAnnotations: 'yes' }] }).success).toBe(false);
    expect(toolgateFileSchema.safeParse({ defaults: { sensitivity: 'SOMETIMES' } }).success).toBe(false);
    expect(toolgateFileSchema.parse({ defaults: { sensitivity: 'MEDIUM' } }).defaults.sensitivity).toBe('MEDIUM');
  });
});

describe('honest states: development switches on a network address are said out loud', () => {
  const NO_UPSTREAMS: ToolgateFile = { upstreams: [], policy: [], defaults: {} };
  async function startupLog(env: Record<string, string>): Promise<{ level: number; msg: string }[]> {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d) => (text += d));
    const t = await startTestGateway({ file: NO_UPSTREAMS, logger: createLogger('info', { destination: stream }), env: { PORT: '0', ...env } });
    await t.close();
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string });
  }
  const warnings = (lines: { level: number; msg: string }[]) => lines.filter((l) => l.level === 40 && l.msg.includes('SECURITY WARNING'));

  it('logs a loud warning at start with RBAC_ENABLED=false or APPROVAL_WORKFLOW_ENABLED=false on HOST=0.0.0.0', async () => {
    const rbacOff = warnings(await startupLog({ HOST: '0.0.0.0', RBAC_ENABLED: 'false' }));
    expect(rbacOff).toHaveLength(1);
    expect(rbacOff[0]!.msg).toMatch(/RBAC_ENABLED=false on the non-loopback address 0\.0\.0\.0: anyone who can reach it may call every tool without a token/);
    const workflowOff = warnings(await startupLog({ HOST: '0.0.0.0', APPROVAL_WORKFLOW_ENABLED: 'false' }));
    expect(workflowOff).toHaveLength(1);
    expect(workflowOff[0]!.msg).toMatch(/APPROVAL_WORKFLOW_ENABLED=false .*HIGH and CRITICAL tools run without a human approving them/);
  });

  it('stays quiet on a loopback address, or with both switches on', async () => {
    expect(warnings(await startupLog({ HOST: '127.0.0.1', RBAC_ENABLED: 'false', APPROVAL_WORKFLOW_ENABLED: 'false' }))).toEqual([]);
    expect(warnings(await startupLog({ HOST: '0.0.0.0' }))).toEqual([]);
  });

  it('counts 127.0.0.0/8, ::1 and localhost as loopback, and nothing else', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '192.168.1.10', 'example.com', 'localhost.example.com', '::2']) expect(isLoopbackHost(host), host).toBe(false);
  });
});
