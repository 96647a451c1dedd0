/**
 * The gateway under test, run as a child process so that its RSS and CPU are its own and the
 * load generator does not share its event loop. Configured by the parent through the
 * environment (the same variables as `toolgate serve`); talks to the parent over IPC:
 * `ready` with its url and seeded tokens, then `stop` → graceful close → exit.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { writeHeapSnapshot } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import type { IssuedToken } from '../../src/db/seed.js';
import { silentLogger } from '../../src/logger.js';
import { startGateway } from '../../src/main.js';
import { receiverSchema } from '../../src/notify/notify.schemas.js';
import { z } from 'zod';

const ECHO_SERVER = fileURLToPath(new URL('./echo-mcp-server.mjs', import.meta.url));

let seeded: IssuedToken[] = [];
const gateway = await startGateway({
  config: loadConfig(process.env),
  logger: silentLogger,
  toolgateFile: {
    upstreams: [{ name: 'echo', command: process.execPath, args: [ECHO_SERVER], prefix: '', callTimeoutMs: 60_000, trustAnnotations: true }],
    policy: [],
    defaults: {},
    // The notify section's receivers (bench/sections/notify.ts), as toolgate.json would give them.
    ...(process.env.BENCH_NOTIFY ? { notify: z.array(receiverSchema).parse(JSON.parse(process.env.BENCH_NOTIFY)) } : {}),
  },
  onSeeded: (tokens) => (seeded = tokens),
});

const token = (user: string) => seeded.find((t) => t.user === user)?.token ?? '';
process.send?.({ type: 'ready', url: gateway.url, tokens: { guest: token('guest_user'), dev: token('dev_user'), admin: token('admin_user') } });

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(code || 1), 15_000);
  force.unref();
  try {
    await gateway.close();
  } finally {
    // A normal exit, so that --cpu-prof writes its profile.
    process.exit(code);
  }
}

// The V8 CPU profiler (what `node --cpu-prof` uses), started and stopped by the parent so that
// the profile covers the measured window only, not the start-up.
let profiler: Session | null = null;
async function startProfile() {
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
  await profiler.post('Profiler.start');
  process.send?.({ type: 'profile-started' });
}
async function stopProfile(path: string) {
  if (!profiler) return;
  const { profile } = await profiler.post('Profiler.stop');
  profiler.disconnect();
  profiler = null;
  writeFileSync(path, JSON.stringify(profile));
  process.send?.({ type: 'profile-written', path });
}

process.on('message', (message: { type?: string; path?: string }) => {
  if (message?.type === 'stop') void stop(0);
  if (message?.type === 'profile-start') void startProfile();
  if (message?.type === 'profile-stop' && message.path) void stopProfile(message.path);
  if (message?.type === 'heap-snapshot' && message.path) process.send?.({ type: 'heap-snapshot', path: writeHeapSnapshot(message.path) });
  if (message?.type === 'counts') {
    // With --expose-gc (the parent sets it), a full collection first: heapUsed is then the live heap.
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ type: 'counts', approvals: gateway.approvals.counts(), bus: gateway.bus.counts(), memory: process.memoryUsage() });
  }
});
process.on('disconnect', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
