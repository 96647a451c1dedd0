// How big is `hello`, and how long does the gateway's event loop stall, when approvers connect
// while 50 requests with 1 MB arguments are pending? Run: node --expose-gc --import tsx bench/hello-size.ts
// The approvers run in a child process, so the delay measured here is the gateway's alone.
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { api, ROOT, startTestGateway } from '../test/helpers.js';

const REQUESTS = Number(process.env.REQUESTS ?? 50);
const APPROVERS = Number(process.env.APPROVERS ?? 5);
const ARGUMENT_BYTES = 1024 * 1024;

const APPROVERS_CHILD = `
import WebSocket from 'ws';
const [url, token, n] = process.argv.slice(1);
const started = Date.now();
const sizes = await Promise.all(Array.from({ length: Number(n) }, () => new Promise((resolve, reject) => {
  const ws = new WebSocket(url, { headers: { authorization: 'Bearer ' + token }, maxPayload: 1024 * 1024 * 1024 });
  ws.on('message', (data) => { ws.terminate(); resolve(data.length); });
  ws.on('error', reject);
})));
console.log(JSON.stringify({ sizes, ms: Date.now() - started }));
`;

const t = await startTestGateway({ env: { BODY_LIMIT_BYTES: String(2 * ARGUMENT_BYTES), APPROVAL_MAX_PENDING: String(REQUESTS + 10), APPROVAL_MAX_PENDING_PER_USER: String(REQUESTS + 10), RATE_LIMIT_PER_MINUTE: '0' } });
try {
  const content = 'y'.repeat(ARGUMENT_BYTES);
  for (let i = 0; i < REQUESTS; i++) {
    const res = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: `big-${i}.txt`, content } }, headers: { prefer: 'respond-async' } });
    if (res.status !== 202) throw new Error(`request ${i}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
  }
  // The 50 MB of request bodies just handled are garbage: collect them first (with --expose-gc), so
  // the delay measured is the approvers' connections' and not a collection that was due anyway.
  (globalThis as { gc?: () => void }).gc?.();
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const child = spawn(process.execPath, ['--input-type=module', '-e', APPROVERS_CHILD, t.wsUrl, t.tokens.admin, String(APPROVERS)], { cwd: ROOT });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
  await new Promise((resolve) => child.on('exit', resolve));
  delay.disable();
  const { sizes, ms } = JSON.parse(out) as { sizes: number[]; ms: number };
  const msOf = (ns: number) => (ns / 1e6).toFixed(1);
  // The work one hello costs the gateway, alone: read the pending list and serialize the frame.
  const runs: number[] = [];
  for (let i = 0; i < 10; i++) {
    const started = process.hrtime.bigint();
    JSON.stringify({ type: 'hello', approver: { id: 'admin_user', role: 'admin' }, pending: await t.gateway.approvals.views.listPending(1000) });
    runs.push(Number(process.hrtime.bigint() - started));
  }
  runs.sort((a, b) => a - b);
  console.log(
    `${REQUESTS} pending × 1 MB, ${APPROVERS} approvers connecting at once: hello ${(sizes[0]! / 1024).toFixed(1)} KiB; all hellos in ${ms} ms; ` +
      `gateway event-loop delay max ${msOf(delay.max)} ms, p99 ${msOf(delay.percentile(99))} ms, mean ${msOf(delay.mean)} ms; ` +
      `building one hello: median ${msOf(runs[5]!)} ms`,
  );
} finally {
  await t.close();
}
