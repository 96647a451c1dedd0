import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadToolgateFile, type ToolgateFile } from '../src/tools/gateway-file.js';
import { api, fixtureToolgateFile, startTestGateway, tempDir, type TestGateway } from './helpers.js';

/** Rules on argument values (toolgate.json `when`), through the gate of a real gateway. */

const RULES: ToolgateFile['policy'] = [
  // echo is MEDIUM here: it runs at once unless a rule says otherwise.
  { tool: 'echo', sensitivity: 'MEDIUM' },
  { tool: 'echo', when: { message: { glob: '*secret*' } }, sensitivity: 'HIGH' },
  { tool: 'ech?', when: { message: { prefix: 'rm ' } }, deny: true },
  { tool: 'echo', when: { message: { oneOf: ['shadowed', 'also shadowed'] } }, deny: true, mode: 'shadow' },
  { tool: 'echo', when: { message: { equals: 'raise and deny secret' } }, deny: true },
  { tool: 'write_file', when: { path: { prefix: '/etc/' } }, sensitivity: 'CRITICAL' },
];

describe('rules on argument values', () => {
  let t: TestGateway | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const echo = (message: string, headers: Record<string, string> = {}) =>
    api(t!.app, 'POST', '/tools/echo/call', { token: t!.tokens.dev, body: { arguments: { message } }, headers });
  const auditOf = (action: string) => t!.query<{ status: string; details: string }>('select status, details from audit_events where action = ? order by seq', action);

  it('turns a MEDIUM call HIGH when its arguments match a glob, and leaves other calls alone', async () => {
    t = await startTestGateway({ file: fixtureToolgateFile({}, { policy: RULES }) });
    const plain = await echo('hello');
    expect([plain.status, plain.body.result.content[0].text]).toEqual([200, '{"message":"hello"}']);
    const raised = await echo('the secret plan', { prefer: 'respond-async' });
    expect(raised.status).toBe(202);
    expect(raised.body.approval).toMatchObject({ tool: 'echo', sensitivity: 'HIGH', status: 'pending', requiredApprovals: 1 });
    // The approver sees the raised request like any other, and its approval runs it.
    const approved = await api(t.app, 'POST', `/api/approvals/${raised.body.approval.id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
    expect(approved.body.approval.status).toBe('approved');
  });

  it('denies a call a rule denies, whatever else matches (deny > approval), and audits the rule', async () => {
    t = await startTestGateway({ file: fixtureToolgateFile({}, { policy: RULES }) });
    const denied = await echo('rm -rf /');
    expect([denied.status, denied.body.error.code]).toEqual([403, 'policy_denied']);
    expect(denied.body.error.message).toContain('policy[2]');
    const both = await echo('raise and deny secret');
    expect([both.status, both.body.error.code]).toEqual([403, 'policy_denied']);
    const audited = (await auditOf('tool.denied')).map((e) => JSON.parse(e.details));
    expect(audited.map((d) => d.rule)).toEqual(['policy[2]', 'policy[4]']);
    expect(await t.query('select id from approval_requests')).toEqual([]);
    // A decision-only request is judged the same way.
    const decision = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'echo', arguments: { message: 'rm x' } } });
    expect(decision.body.error.code).toBe('policy_denied');
  });

  it('only logs what a shadow rule would have done', async () => {
    t = await startTestGateway({ file: fixtureToolgateFile({}, { policy: RULES }) });
    const ran = await echo('shadowed');
    expect(ran.status).toBe(200);
    const [shadow] = await auditOf('policy.shadow');
    expect(shadow!.status).toBe('would_deny');
    expect(JSON.parse(shadow!.details)).toMatchObject({
      rules: [{ rule: 'policy[3]', effect: 'deny', mode: 'shadow' }],
      wouldHave: { denied: true, sensitivity: 'MEDIUM' },
      enforced: { denied: false, sensitivity: 'MEDIUM' },
    });
    expect(await auditOf('tool.denied')).toEqual([]);
  });

  it('matches a prefix on the normalised path too, so ".." cannot walk around it', async () => {
    t = await startTestGateway({ file: fixtureToolgateFile({}, { policy: RULES }) });
    const sneaky = await api(t.app, 'POST', '/tools/write_file/call', {
      token: t.tokens.dev,
      body: { arguments: { path: '/srv/../etc/passwd', content: 'x' } },
      headers: { prefer: 'respond-async' },
    });
    expect(sneaky.body.approval.sensitivity).toBe('CRITICAL');
    const fine = await api(t.app, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: '/srv/etc/x', content: 'x' } }, headers: { prefer: 'respond-async' } });
    expect(fine.body.approval.sensitivity).toBe('HIGH');
    // The rules are part of the policy version the approval is bound to.
    const other = await startTestGateway({ file: fixtureToolgateFile({}, { policy: RULES.slice(0, 2) }) });
    try {
      const elsewhere = await api(other.app, 'POST', '/tools/write_file/call', { token: other.tokens.dev, body: { arguments: { path: '/srv/etc/x', content: 'x' } }, headers: { prefer: 'respond-async' } });
      expect(elsewhere.body.approval.policyVersion).not.toBe(fine.body.approval.policyVersion);
    } finally {
      await other.close();
    }
  });
});

describe('validating rules in toolgate.json', () => {
  const load = (policy: unknown) => {
    const dir = tempDir();
    const path = join(dir.path, 'toolgate.json');
    writeFileSync(path, JSON.stringify({ upstreams: [], policy }));
    try {
      return loadToolgateFile(path);
    } finally {
      dir.remove();
    }
  };

  it('names the entry and the problem of a bad rule', () => {
    expect(() => load([{ tool: 'x', when: { path: { glob: '/etc/**' } } }])).toThrow(/policy\.0\.when: a rule with "when" needs "sensitivity" \(to raise it\) or "deny": true/);
    expect(() => load([{ tool: 'x', when: { path: { regex: '.*' } }, deny: true }])).toThrow(/policy\.0\.when\.path: a condition is one of \{"equals": value\}, \{"oneOf": \[values\]\}, \{"prefix": "text"\} or \{"glob"/);
    expect(() => load([{ tool: 'x', when: { path: { prefix: '/a', glob: '/b' } }, deny: true }])).toThrow(/policy\.0\.when\.path: a condition is one of/);
    expect(() => load([{ tool: 'x', deny: true }])).toThrow(/policy\.0\.deny: "deny" needs "when"/);
    expect(() => load([{ tool: 'x', when: { a: { equals: 1 } }, deny: true, sensitivity: 'HIGH' }])).toThrow(/policy\.0\.deny: a rule either denies or sets a sensitivity, not both/);
    expect(() => load([{ tool: 'x', when: { a: { oneOf: [] } }, deny: true }])).toThrow(/policy\.0\.when\.a/);
    expect(() => load([{ tool: 'x', when: { a: { equals: 1 } }, deny: true, mode: 'dry-run' }])).toThrow(/policy\.0\.mode/);
    expect(load([{ tool: 'x', when: { a: { equals: { nested: [1, 2] } } }, sensitivity: 'CRITICAL', mode: 'shadow' }]).file.policy[0]).toMatchObject({ mode: 'shadow' });
  });
});
