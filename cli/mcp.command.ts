import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  ToolListChangedNotificationSchema,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import type { Command } from 'commander';
import { sendingPlainErrors } from '../src/mcp/plain-errors.js';
import { serverFrom, tokenFrom } from './client.js';

/** `http://host:8020` and `http://host:8020/mcp` both mean the gateway's MCP endpoint. */
export function mcpEndpoint(server: string): URL {
  const url = new URL(server);
  if (!url.pathname.replace(/\/+$/, '').endsWith('/mcp')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/mcp`;
  return url;
}

const BRIDGE_CALL_TIMEOUT_MS = 24 * 60 * 60_000;

// stdout carries the protocol and nothing else.
const log = (message: string) => process.stderr.write(`toolgate mcp: ${message}\n`);

/**
 * The link to the gateway. A gateway that restarted has forgotten the session (404); then the
 * bridge opens a new one and retries once, which is safe because the gateway never saw the call.
 */
class GatewayLink {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  onToolsChanged: () => void = () => {};

  constructor(
    private readonly endpoint: URL,
    private readonly token: string | undefined,
  ) {}

  async connect(): Promise<Client> {
    if (this.client) return this.client;
    this.connecting ??= this.open().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async open(): Promise<Client> {
    const client = new Client({ name: 'toolgate-mcp-bridge', version: '0.1.0' }, { capabilities: {} });
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => this.onToolsChanged());
    const transport = new StreamableHTTPClientTransport(this.endpoint, {
      requestInit: { headers: this.token ? { authorization: `Bearer ${this.token}` } : {} },
    });
    client.onclose = () => {
      if (this.client === client) this.client = null;
    };
    await client.connect(transport);
    this.client = client;
    return client;
  }

  async use<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await fn(client);
    } catch (err) {
      if (!(err instanceof StreamableHTTPError && err.code === 404)) throw err;
      log('the gateway forgot our session (restarted?); opening a new one');
      if (this.client === client) this.client = null;
      await client.close().catch(() => undefined);
      return fn(await this.connect());
    }
  }

  instructions(): string | undefined {
    return this.client?.getInstructions();
  }

  async close() {
    const client = this.client;
    this.client = null;
    if (!client) return;
    // DELETE ends the session on the gateway, which cancels any call still waiting there.
    await (client.transport as StreamableHTTPClientTransport | undefined)?.terminateSession().catch(() => undefined);
    await client.close().catch(() => undefined);
  }
}

/** Relays MCP between stdin/stdout and the gateway's /mcp until stdin closes. */
export async function runMcpBridge(options: { server: string; token: string | undefined }): Promise<void> {
  const link = new GatewayLink(mcpEndpoint(options.server), options.token);
  try {
    await link.connect();
  } catch (err) {
    throw new Error(`cannot open an MCP session at ${mcpEndpoint(options.server).href}: ${describe(err)}`);
  }

  const instructions = link.instructions();
  const server = new Server({ name: 'toolgate', version: '0.1.0' }, { capabilities: { tools: { listChanged: true } }, ...(instructions ? { instructions } : {}) });
  link.onToolsChanged = () => void server.sendToolListChanged().catch(() => undefined);

  server.setRequestHandler(ListToolsRequestSchema, async (request) => {
    try {
      return await link.use((client) => client.listTools(request.params));
    } catch (err) {
      throw asMcpError(err);
    }
  });

  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const progressToken = request.params._meta?.progressToken;
    const { _meta: _dropped, ...params } = request.params;
    try {
      return (await link.use((client) =>
        client.callTool(params, CallToolResultSchema, {
          signal: extra.signal,
          // The client at the other end owns the timeout (its cancellation arrives as extra.signal);
          // the gateway's progress keeps this request alive for as long as an approver takes.
          timeout: BRIDGE_CALL_TIMEOUT_MS,
          resetTimeoutOnProgress: true,
          onprogress: (progress) => {
            if (progressToken === undefined) return;
            void extra.sendNotification({ method: 'notifications/progress', params: { ...progress, progressToken } }).catch(() => undefined);
          },
        }),
      )) as CallToolResult;
    } catch (err) {
      if (err instanceof McpError) throw err;
      // A model reads tool results, not transport errors: say plainly that the gateway is unreachable.
      return { content: [{ type: 'text', text: `toolgate could not be reached: ${describe(err)}` }], isError: true };
    }
  });

  const stdio = sendingPlainErrors(new StdioServerTransport());
  const closed = new Promise<void>((resolve) => (server.onclose = resolve));
  process.stdin.on('end', () => void server.close());
  await server.connect(stdio);
  log(`relaying MCP on stdio to ${mcpEndpoint(options.server).href}`);
  await closed;
  await link.close();
}

function asMcpError(err: unknown): McpError {
  if (err instanceof McpError) return err;
  return new McpError(ErrorCode.InternalError, `toolgate could not be reached: ${describe(err)}`);
}

function describe(err: unknown): string {
  const e = err as Error & { cause?: Error };
  return e.cause?.message ? `${e.message} (${e.cause.message})` : e.message;
}

export function mcpCommand(program: Command) {
  program
    .command('mcp')
    .description('serve MCP on stdin/stdout and forward it to the gateway (for clients that only start local MCP servers)')
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ server?: string; token?: string }>();
      await runMcpBridge({ server: serverFrom(opts), token: tokenFrom(opts) });
      process.exit(0);
    });
}
