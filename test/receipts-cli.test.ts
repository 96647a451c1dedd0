// @module-tag process
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, eventually, runCli, startTestGateway, tempDir, type TestGateway } from './helpers.js';

/** `toolgate receipt verify` and `toolgate keys rotate`, the real binary in a child process. */
describe('toolgate receipt verify and keys rotate', () => {
  let t: TestGateway;
  let files: ReturnType<typeof tempDir>;
  let receipt: string;
  const args = { path: 'notes.txt', content: 'hello' };

  beforeAll(async () => {
    t = await startTestGateway({ env: { RECEIPT_TTL: '600' } });
    files = tempDir();
    const made = await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: args } });
    const approved = await api(t.url, 'POST', `/api/approvals/${made.body.approval.id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
    receipt = approved.body.approval.receipt;
    writeFileSync(join(files.path, 'jwks.json'), JSON.stringify((await api(t.url, 'GET', '/.well-known/jwks.json')).body));
    writeFileSync(join(files.path, 'args.json'), JSON.stringify({ content: 'hello', path: 'notes.txt' }));
    writeFileSync(join(files.path, 'other-args.json'), JSON.stringify({ ...args, path: '/etc/shadow' }));
  });

  afterAll(async () => {
    await t.close();
    files.remove();
  });

  it('exits 0 for a valid receipt with matching arguments, offline against a JWKS file', async () => {
    const res = await runCli(['receipt', 'verify', receipt, '--jwks', join(files.path, 'jwks.json'), '--arguments', join(files.path, 'args.json')]);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toContain('valid: receipt for request');
    expect(res.stdout).toContain('approved by admin_user');
    expect(res.stdout).toContain('arguments match the ones approved');
  });

  it('exits 4 for other arguments, 2 for a tampered receipt, 1 for an unreadable JWKS; fetches the JWKS from the gateway by default', async () => {
    const other = await runCli(['receipt', 'verify', receipt, '--jwks', join(files.path, 'jwks.json'), '--arguments', join(files.path, 'other-args.json')]);
    expect([other.status, other.stdout]).toEqual([4, expect.stringContaining('INVALID (arguments_mismatch)')]);
    const [h, p, s] = receipt.split('.');
    const tampered = `${h}.${p}.${s!.slice(0, -4)}AAAA`;
    const bad = await runCli(['receipt', 'verify', tampered, '--jwks', join(files.path, 'jwks.json')]);
    expect([bad.status, bad.stdout]).toEqual([2, expect.stringContaining('INVALID (bad_signature)')]);
    const missing = await runCli(['receipt', 'verify', receipt, '--jwks', join(files.path, 'nope.json')]);
    expect(missing.status).toBe(1);
    const online = await runCli(['receipt', 'verify', receipt, '--server', t.url]);
    expect(online.status, online.stderr).toBe(0);
  });

  it('rotates the key: the gateway signs with the new key, and the old receipt still verifies against the published keys', async () => {
    const rotated = await runCli(['keys', 'rotate'], { DATABASE_PATH: t.dbPath });
    expect(rotated.status, rotated.stderr).toBe(0);
    const newKid = /rotated: ([0-9a-f]{16}) signs/.exec(rotated.stdout)![1]!;
    const listed = await runCli(['keys', 'list'], { DATABASE_PATH: t.dbPath });
    expect(listed.stdout).toMatch(new RegExp(`${newKid} .*signing`));
    expect(listed.stdout).toContain('retired, still published');
    await eventually(async () => (await api(t.url, 'GET', '/.well-known/jwks.json')).body.keys.length === 2, 5000, 100);
    const old = await runCli(['receipt', 'verify', receipt, '--server', t.url, '--arguments', join(files.path, 'args.json')]);
    expect(old.status, old.stdout).toBe(0);
    const made = await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: args } });
    const approved = await api(t.url, 'POST', `/api/approvals/${made.body.approval.id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
    const fresh = await runCli(['receipt', 'verify', approved.body.approval.receipt, '--server', t.url]);
    expect(fresh.stdout).toContain(`signed by key ${newKid}`);
    expect(await t.query("select actor from audit_events where action = 'keys.rotated'")).toHaveLength(1);
  });
});
