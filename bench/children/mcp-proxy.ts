/**
 * The gate's yardstick: a minimal Hono proxy that forwards `POST /tools/:name/call` to the same
 * upstream MCP server the gateway uses (bench/children/echo-mcp-server.mjs over stdio, one MCP
 * SDK client) and answers `{ result }`, with no auth, policy, audit or database. What a LOW call
 * through toolgate costs beyond this is the price of the gate itself. Run as a child process
 * exactly like the gateway.
 */
import { serve } from '@hono/node-server';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const ECHO_SERVER = fileURLToPath(new URL('./echo-mcp-server.mjs', import.meta.url));

async function main() {
  const client = new Client({ name: 'bench-proxy', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [ECHO_SERVER], stderr: 'inherit' }));

  const app = new Hono();
  app.post('/tools/:name/call', async (c) => {
    const body = (await c.req.json()) as { arguments?: Record<string, unknown> };
    const result = await client.callTool({ name: c.req.param('name'), arguments: body.arguments ?? {} });
    return c.json({ result });
  });

  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
    process.send?.({ type: 'ready', url: `http://127.0.0.1:${info.port}`, tokens: { guest: '', dev: '', admin: '' } });
  });

  const stop = () => {
    server.close();
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    void client.close().finally(() => process.exit(0));
  };
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'stop') stop();
  });
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
