import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { api, ROOT, startTestGateway } from '../helpers.js';
import { connectApprover } from '../ws-client.js';

/** Another process that keeps taking the write lock: BEGIN IMMEDIATE, hold ~200 ms, COMMIT, for `ms`. */
const HOG = `
import Database from 'better-sqlite3';
const [path, ms] = process.argv.slice(1);
const db = new Database(path);
db.pragma('busy_timeout = 10000');
const hold = (t) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, t);
const end = Date.now() + Number(ms);
let n = 0;
while (Date.now() < end) {
  db.exec('BEGIN IMMEDIATE');
  db.prepare("update meta set updated_at = ? where key = 'seeded_at'").run(Date.now());
  hold(200);
  db.exec('COMMIT');
  n++;
  hold(25);
}
db.close();
process.stdout.write(String(n));
`;

describe('busy database: a second process holding write transactions', () => {
  it('makes no request fail with SQLITE_BUSY while another process holds the write lock for 5 s', async () => {
    const log = new PassThrough();
    let logged = '';
    log.on('data', (d) => (logged += d));
    const t = await startTestGateway({ logger: createLogger('info', { destination: log }), env: { APPROVAL_POLLING_INTERVAL: '0.1', APPROVAL_MAX_PENDING: '1000', RATE_LIMIT_PER_MINUTE: '0' } });
    const hog = spawn(process.execPath, ['--input-type=module', '-e', HOG, t.dbPath, '5000'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let hogOut = '';
    let hogErr = '';
    hog.stdout.on('data', (d) => (hogOut += d));
    hog.stderr.on('data', (d) => (hogErr += d));
    const hogDone = new Promise<number | null>((resolve) => hog.on('exit', resolve));
    const approver = await connectApprover(t.wsUrl, t.tokens.admin);
    try {
      await approver.next((f) => f.type === 'hello');
      const statuses: number[] = [];
      const bodies: string[] = [];
      const record = <R extends { status: number; body: any }>(r: R): R => {
        statuses.push(r.status);
        if (r.status >= 500) bodies.push(JSON.stringify(r.body));
        return r;
      };
      const deadline = Date.now() + 5000;
      let round = 0;
      while (Date.now() < deadline && round < 200) {
        round++;
        const [created, ...others] = await Promise.all([
          api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: `b${round}`, content: 'x' } }, headers: { prefer: 'respond-async' } }).then(record),
          ...Array.from({ length: 6 }, (_, i) => api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: { message: `m${round}-${i}` } } }).then(record)),
          api(t.url, 'GET', '/api/approvals/pending?limit=5', { token: t.tokens.admin }).then(record),
          api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'git_status', arguments: {} } }).then(record),
        ]);
        for (const r of others) expect(r.status).toBeLessThan(300);
        const id = created.body.approval?.id as string;
        if (round % 2) {
          record(await api(t.url, 'POST', `/api/approvals/${id}/approve`, { token: t.tokens.admin, body: { reason: 'busy' } }));
        } else {
          approver.ws.send(JSON.stringify({ type: 'decide', ref: id, id, decision: 'reject', reason: 'busy' }));
          const frame = await approver.next((f) => f.ref === id, 15_000);
          expect(frame.type).toBe('decide.ok');
        }
      }
      const hogExit = await hogDone;
      expect(hogErr).toBe('');
      expect(hogExit).toBe(0);
      expect(Number(hogOut)).toBeGreaterThan(10);
      expect(bodies).toEqual([]);
      expect(statuses.every((s) => s === 200 || s === 202)).toBe(true);
      expect(logged).not.toMatch(/SQLITE_BUSY|database is locked/);
      expect(logged).not.toMatch(/"level":50/);
      console.info(`busy database: ${statuses.length} HTTP requests and ${Math.floor(round / 2)} WebSocket decisions during ${hogOut} held write transactions of 200 ms`);
    } finally {
      approver.close();
      hog.kill('SIGKILL');
      await t.close();
    }
  }, 60_000);
});
