import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ROOT } from './helpers.js';

const DECIDE_ELSEWHERE = fileURLToPath(new URL('./fixtures/decide-elsewhere.ts', import.meta.url));

/** Decides a request from a separate Node process on the same database file (no gateway, no sockets). */
export function decideInAnotherProcess(
  dbPath: string,
  verdict: 'approve' | 'reject',
  id: string,
  reason: string,
  approver = 'admin_user',
): Promise<{ committedAt: number; approval: any }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', DECIDE_ELSEWHERE, dbPath, approver, verdict, id, reason], { cwd: ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`decide-elsewhere exited ${code}: ${err}`))));
  });
}

/**
 * The same, blocking this process until the other one has committed: nothing in this process
 * (an in-process gateway's background jobs, say) can run in between, so a test can line up several
 * changes made elsewhere before the gateway sees any of them.
 */
export function decideInAnotherProcessSync(dbPath: string, verdict: 'approve' | 'reject', id: string, reason: string, approver = 'admin_user'): { committedAt: number; approval: any } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', DECIDE_ELSEWHERE, dbPath, approver, verdict, id, reason], { cwd: ROOT, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`decide-elsewhere exited ${res.status}: ${res.stderr}`);
  return JSON.parse(res.stdout);
}
