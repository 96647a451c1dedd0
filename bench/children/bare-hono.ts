/**
 * The baseline: a bare Hono JSON echo handler on @hono/node-server, answering the same path with
 * the same response shape as the gateway's LOW tool call, and nothing else (no auth, no database,
 * no upstream). Run as a child process exactly like the gateway.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';

const app = new Hono();
app.post('/tools/:name/call', async (c) => {
  const body = (await c.req.json()) as { arguments?: unknown };
  return c.json({ result: { content: [{ type: 'text', text: JSON.stringify(body.arguments ?? {}) }] } });
});

const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
  process.send?.({ type: 'ready', url: `http://127.0.0.1:${info.port}`, tokens: { guest: '', dev: '', admin: '' } });
});

const stop = () => {
  server.close();
  (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  process.exit(0);
};
process.on('message', (message: { type?: string }) => {
  if (message?.type === 'stop') stop();
});
process.on('disconnect', stop);
process.on('SIGTERM', stop);
