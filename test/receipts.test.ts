import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { callHash } from '../src/approvals/binding.js';
import { createAuditLog } from '../src/audit/audit.service.js';
import { Checkpointer, verifyCheckpoints } from '../src/audit/checkpoints.js';
import { SqliteStore } from '../src/db/sqlite-store.js';
import { createDecider } from '../src/decider.js';
import { silentLogger } from '../src/logger.js';
import { verifyReceipt } from '../src/receipts/receipts.js';
import { KeyRing } from '../src/signing/key-ring.js';
import { api, eventually, startTestGateway, tempDir, type TestGateway } from './helpers.js';

/**
 * Binding and receipts through a real gateway: the approval is bound to the canonical call, the
 * executor refuses anything else, and approved requests carry receipts that verify offline.
 */

const ARGS = { path: '/srv/app/notes.txt', content: 'hello' };

describe('binding an approval to the call', () => {
  let t: TestGateway | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('stores the canonical hash and the policy version on the request and shows them to approvers', async () => {
    t = await startTestGateway();
    const made = await api(t.app, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: ARGS }, headers: { prefer: 'respond-async' } });
    expect(made.status).toBe(202);
    const pending = (await api(t.app, 'GET', '/api/approvals/pending', { token: t.tokens.admin })).body.pending_approvals[0];
    expect(pending.policyVersion).toMatch(/^[0-9a-f]{16}$/);
    // Key order does not change the canonical form.
    const reordered = { content: 'hello', path: '/srv/app/notes.txt' };
    expect(pending.callHash).toBe(callHash({ tool: 'write_file', arguments: reordered, requester: 'dev_user', policyVersion: pending.policyVersion }));
    expect(pending.callHash).not.toBe(callHash({ tool: 'write_file', arguments: ARGS, requester: 'admin_user', policyVersion: pending.policyVersion }));
    const [stored] = await t.query('select call_hash, policy_version from approval_requests where id = ?', made.body.approval.id);
    expect(stored).toEqual({ call_hash: pending.callHash, policy_version: pending.policyVersion });
    expect(made.body.approval.receipt).toBeUndefined();
  });

  it('refuses at execution a request whose stored arguments were altered after its approval, and audits it', async () => {
    const counter = join(tempDir().path, 'count.txt');
    // Jobs every minute: the test decides when the gateway looks at the database again.
    t = await startTestGateway({ env: { APPROVAL_POLLING_INTERVAL: '60' }, fixtureEnv: { FIXTURE_COUNTER_FILE: counter } });
    const made = await api(t.app, 'POST', '/tools/count/call', { token: t.tokens.dev, body: { arguments: { tag: 'approved' } }, headers: { prefer: 'respond-async' } });
    expect(made.status).toBe(202);
    const id = made.body.approval.id as string;
    // Approved by another process on the same file, so that nothing runs it before the tampering.
    const decider = await createDecider(t.dbPath);
    try {
      await decider.decide((await decider.approver('admin_user'))!, id, 'approve', 'tag approved is fine');
    } finally {
      await decider.close();
    }
    await t.query('update approval_requests set arguments = ? where id = ?', JSON.stringify({ tag: 'EVIL' }), id);
    await t.gateway.jobs.tick();

    const after = await eventually(async () => {
      const res = await api(t!.app, 'GET', `/api/approvals/${id}`, { token: t!.tokens.dev });
      return res.body.approval.execution.status === 'failed' ? res.body.approval : null;
    });
    expect(after.execution.error).toMatch(/^refused: the call about to run is not the one approved/);
    expect(existsSync(counter) ? readFileSync(counter, 'utf8') : '').toBe('');
    const audited = await t.query<{ details: string }>("select actor, status, details from audit_events where request_id = ? and action = 'execution.refused'", id);
    expect(audited).toHaveLength(1);
    const details = JSON.parse(audited[0]!.details);
    expect(details).toMatchObject({ code: 'binding_mismatch', approvedHash: made.body.approval.callHash });
    expect(details.runHash).not.toBe(made.body.approval.callHash);
  });

  it('answers a waiting caller 409 binding_mismatch when the arguments changed between approval and run', async () => {
    const counter = join(tempDir().path, 'count.txt');
    t = await startTestGateway({ env: { APPROVAL_POLLING_INTERVAL: '60' }, fixtureEnv: { FIXTURE_COUNTER_FILE: counter } });
    const call = api(t.url, 'POST', '/tools/count/call', { token: t.tokens.dev, body: { arguments: { tag: 'approved' } } });
    const pending = await eventually(async () => (await api(t!.app, 'GET', '/api/approvals/pending', { token: t!.tokens.admin })).body.pending_approvals[0]);
    const decider = await createDecider(t.dbPath);
    try {
      await decider.decide((await decider.approver('admin_user'))!, pending.id, 'approve', 'fine');
    } finally {
      await decider.close();
    }
    await t.query('update approval_requests set arguments = ? where id = ?', JSON.stringify({ tag: 'approved', extra: 1 }), pending.id);
    // The change feed reads the decision and wakes the caller (on PostgreSQL the feed's poll is not
    // due at every tick, and this decider sends no NOTIFY: it must not wake the caller before the edit).
    await t.gateway.jobs.tick({ everyJob: true });
    const res = await call;
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('binding_mismatch');
    expect(res.body.approval).toMatchObject({ id: pending.id, status: 'approved', execution: { status: 'failed' } });
    expect(existsSync(counter) ? readFileSync(counter, 'utf8') : '').toBe('');
  });
});

describe('signed receipts', () => {
  let t: TestGateway | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function approvedCall(gateway: TestGateway, args: Record<string, unknown> = ARGS) {
    const made = await api(gateway.app, 'POST', '/tools/write_file/call', { token: gateway.tokens.dev, body: { arguments: args }, headers: { prefer: 'respond-async' } });
    const decided = await api(gateway.app, 'POST', `/api/approvals/${made.body.approval.id}/approve`, { token: gateway.tokens.admin, body: { reason: 'ok' } });
    expect(decided.status).toBe(200);
    const approval = await eventually(async () => {
      const res = await api(gateway.app, 'GET', `/api/approvals/${made.body.approval.id}`, { token: gateway.tokens.dev });
      return res.body.approval.execution.status === 'succeeded' ? res.body.approval : null;
    });
    return approval;
  }

  const jwksOf = async (gateway: TestGateway) => (await api(gateway.app, 'GET', '/.well-known/jwks.json')).body;

  it('gives an approved request a receipt that verifies offline with only the JWKS, and fails for other arguments, another key or after expiry', async () => {
    t = await startTestGateway({ env: { RECEIPT_TTL: '600' } });
    const approval = await approvedCall(t);
    const jws = approval.receipt as string;
    expect(jws.split('.')).toHaveLength(3);
    const jwks = await jwksOf(t);
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(jwks.keys[0].d).toBeUndefined();

    const ok = await verifyReceipt(jws, jwks, { arguments: { content: 'hello', path: '/srv/app/notes.txt' } });
    expect(ok).toMatchObject({ ok: true, claims: { jti: approval.id, sub: 'dev_user', tool: 'write_file', call_hash: approval.callHash, approvers: ['admin_user'] } });
    if (!ok.ok) throw new Error('unreachable');
    expect(ok.claims.exp - ok.claims.iat).toBe(600);
    expect(ok.claims.iat).toBe(Math.floor(Date.parse(approval.decidedAt) / 1000));

    expect(await verifyReceipt(jws, jwks, { arguments: { ...ARGS, path: '/etc/passwd' } })).toMatchObject({ ok: false, reason: 'arguments_mismatch' });
    expect(await verifyReceipt(jws, jwks, { now: new Date((ok.claims.exp + 1) * 1000) })).toMatchObject({ ok: false, reason: 'expired' });

    const other = KeyRing.openOrCreate(join(tempDir().path, 'other.key'));
    const otherJwks = { keys: [{ ...jwks.keys[0], x: Buffer.from(other.current().publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64url') }] };
    expect(await verifyReceipt(jws, otherJwks)).toMatchObject({ ok: false, reason: 'bad_signature' });
    const [header, payload, signature] = jws.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), approvers: ['someone_else'] })).toString('base64url');
    expect(await verifyReceipt(`${header}.${forged}.${signature}`, jwks)).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('creates the signing key file 0600 on first start, and lists /.well-known/jwks.json in /openapi.json', async () => {
    t = await startTestGateway();
    expect(statSync(join(t.dir, 'audit-signing.key')).mode & 0o777).toBe(0o600);
    const doc = (await api(t.app, 'GET', '/openapi.json')).body;
    expect(doc.paths['/.well-known/jwks.json'].get.responses['200']).toBeDefined();
  });

  it('gives a decision-only caller the receipt to show whoever runs the tool', async () => {
    t = await startTestGateway();
    const asked = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: ARGS } });
    expect(asked.status).toBe(202);
    await api(t.app, 'POST', `/api/approvals/${asked.body.approval.id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
    const got = await api(t.app, 'GET', `/api/approvals/${asked.body.approval.id}`, { token: t.tokens.dev });
    expect(got.body.approval.execution.status).toBe('none');
    expect(await verifyReceipt(got.body.approval.receipt, await jwksOf(t), { arguments: ARGS })).toMatchObject({ ok: true });
    // A decision that needed no approval carries one too, with nobody named as approver.
    const low = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'list_files', arguments: { path: '.' } } });
    expect(await verifyReceipt(low.body.approval.receipt, await jwksOf(t), { arguments: { path: '.' } })).toMatchObject({ ok: true, claims: { approvers: [] } });
  });

  it('keeps receipts signed before a rotation verifiable, and unpublishes the old key once they have all expired', async () => {
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    t = await startTestGateway({ env: { RECEIPT_TTL: '60' }, clock });
    const before = await approvedCall(t);
    const oldKid = JSON.parse(Buffer.from(before.receipt.split('.')[0], 'base64url').toString()).kid;

    KeyRing.read(join(t.dir, 'audit-signing.key'))!.rotate();
    const jwks = await eventually(async () => {
      const doc = await jwksOf(t!);
      return doc.keys.length === 2 ? doc : null;
    }, 5000, 100);
    const after = await approvedCall(t, { path: 'b', content: 'c' });
    const newKid = JSON.parse(Buffer.from(after.receipt.split('.')[0], 'base64url').toString()).kid;
    expect(newKid).not.toBe(oldKid);
    expect(jwks.keys.map((k: { kid: string }) => k.kid).sort()).toEqual([oldKid, newKid].sort());
    expect(await verifyReceipt(before.receipt, jwks, { arguments: ARGS })).toMatchObject({ ok: true, keyId: oldKid });
    expect(await verifyReceipt(after.receipt, jwks, { arguments: { path: 'b', content: 'c' } })).toMatchObject({ ok: true, keyId: newKid });

    offset = 60_000 + 60_000 + 1000; // past the old key's last receipt (60 s) and the minute's margin
    const later = await jwksOf(t);
    expect(later.keys.map((k: { kid: string }) => k.kid)).toEqual([newKid]);
  });
});

describe('the key ring and the audit checkpoints', () => {
  it('reads a key file of the older single-PEM kind, keeps its checkpoints verifying after a rotation, and signs new ones with the new key', async () => {
    const dir = tempDir();
    const keyPath = join(dir.path, 'audit-signing.key');
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    const store = SqliteStore.open(join(dir.path, 'toolgate.db'));
    try {
      const audit = createAuditLog({ clock: { now: () => Date.now() }, instanceId: 'test' });
      const append = (n: number) => store.withTransaction(async (tx) => {
        for (let i = 0; i < n; i++) await audit.append(tx, { actor: 'someone', action: 'test.event' });
      });
      const ring = KeyRing.read(keyPath)!;
      const legacyKid = ring.current().keyId;
      const filePath = join(dir.path, 'audit-checkpoints.jsonl');
      const checkpointer = await Checkpointer.open({ store, key: ring, clock: { now: () => Date.now() }, instanceId: 'test', every: 3, logger: silentLogger, filePath });
      await append(3);
      const first = await checkpointer.checkpoint({ force: true });
      expect(first?.keyId).toBe(legacyKid);

      const fresh = ring.rotate();
      expect(readFileSync(keyPath, 'utf8')).toContain('"version": 1');
      expect(statSync(keyPath).mode & 0o777).toBe(0o600);
      await append(3);
      const second = await checkpointer.checkpoint({ force: true });
      expect(second?.keyId).toBe(fresh.keyId);

      const report = await verifyCheckpoints(store, { key: KeyRing.read(keyPath), keyPath, filePath });
      expect(report).toMatchObject({ ok: true, checkpoints: 2, problems: [] });
      // A ring without the old key cannot vouch for the checkpoints it signed.
      const stranger = KeyRing.openOrCreate(join(dir.path, 'stranger.key'));
      const forged = await verifyCheckpoints(store, { key: stranger, keyPath, filePath });
      expect(forged.ok).toBe(false);
    } finally {
      await store.close();
      dir.remove();
    }
  });
});
