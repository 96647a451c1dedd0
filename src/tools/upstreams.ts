import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolResultSchema,
  ErrorCode,
  McpError,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { TOOL_NAME } from '../approvals/approval.js';
import { AppError } from '../core/errors.js';
import type { Logger } from '../logger.js';
import type { ToolAnnotations, ToolHints } from '../policy/policy.service.js';
import type { UpstreamConfig } from './gateway-file.js';

export interface ToolEntry extends ToolHints {
  /** The name callers use: the upstream's prefix plus its own name. */
  name: string;
  upstream: string;
  upstreamName: string;
  title?: string | undefined;
  description: string;
  inputSchema: Tool['inputSchema'];
  outputSchema?: Tool['outputSchema'];
  annotations: ToolAnnotations | undefined;
}

export type { CallToolResult };

/** What the gate needs from the tools behind it. */
export interface ToolExecutor {
  list(): ToolEntry[];
  get(name: string): ToolEntry | undefined;
  call(name: string, args: Record<string, unknown>, options?: { signal?: AbortSignal }): Promise<CallToolResult>;
  onToolsChanged(listener: () => void): void;
}

/**
 * Connects an upstream some other way than its config says, or answers undefined to use the
 * config (a child over stdio, or Streamable HTTP). Tests run the fixture server in-process with it.
 */
export type UpstreamTransportFactory = (config: UpstreamConfig) => Transport | undefined;

const MAX_BACKOFF_MS = 30_000;

const PATH_PLACEHOLDER = '[path]';
/** `file:` URLs, Windows drive and UNC paths, and POSIX absolute paths standing as a word of their own. */
const SERVER_PATHS = [
  /\bfile:\/\/[^\s'"`<>]*/gi,
  /(?<![A-Za-z0-9])[A-Za-z]:[\\/][^\s'"`<>|,;]*/g,
  /(?<![\\\w])\\\\[^\s'"`<>|,;\\]+\\[^\s'"`<>|,;]*/g,
  /(?<=^|[\s'"`(\[{=,:])\/[^\s'"`<>()[\]{},;:/][^\s'"`<>()[\]{},;:]*/g,
];

/**
 * Replaces absolute paths in an upstream's error message with "[path]": where the server keeps
 * its files, and where toolgate is installed, are no business of the caller. URLs' paths and
 * relative paths stay.
 */
export function scrubPaths(message: string): string {
  let out = message;
  for (const pattern of SERVER_PATHS) out = out.replace(pattern, PATH_PLACEHOLDER);
  return out;
}

/** One MCP server behind the gateway: connects, lists its tools, reconnects after it dies. */
class Upstream {
  client: Client | null = null;
  tools: ToolEntry[] = [];
  private closed = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private probing = false;

  constructor(
    readonly config: UpstreamConfig,
    private readonly logger: Logger,
    private readonly onToolsChanged: () => void,
    private readonly transportFor?: UpstreamTransportFactory,
  ) {}

  get connected() {
    return this.client !== null;
  }

  private transport(): Transport {
    const c = this.config;
    const given = this.transportFor?.(c);
    if (given) return given;
    if ('command' in c) {
      return new StdioClientTransport({
        command: c.command,
        args: c.args,
        env: { ...(process.env as Record<string, string>), ...c.env },
        ...(c.cwd ? { cwd: c.cwd } : {}),
        stderr: 'pipe',
      });
    }
    return new StreamableHTTPClientTransport(new URL(c.url), { requestInit: { headers: c.headers ?? {} } });
  }

  async connect(): Promise<void> {
    const client = new Client({ name: 'toolgate', version: '0.1.0' }, { capabilities: {} });
    const transport = this.transport();
    if (transport instanceof StdioClientTransport) {
      transport.stderr?.on('data', (chunk: Buffer) => this.logger.debug({ upstream: this.config.name, stderr: chunk.toString().trim() }, 'upstream stderr'));
    }
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      await this.refreshTools(client).catch((err) => this.logger.warn({ upstream: this.config.name, err }, 'could not relist tools'));
    });
    client.onclose = () => {
      if (this.client !== client) return;
      this.client = null;
      if (!this.closed) {
        this.logger.warn({ upstream: this.config.name }, 'upstream disconnected; reconnecting');
        this.scheduleReconnect();
      }
    };
    if (!('command' in this.config)) client.onerror = (err) => this.checkAlive(client, err);
    await client.connect(transport);
    this.client = client;
    this.attempt = 0;
    await this.refreshTools(client);
    this.logger.info({ upstream: this.config.name, tools: this.tools.length }, 'upstream connected');
  }

  /**
   * Over HTTP, the SDK leaves a call hanging until its timeout when the stream that should carry
   * its answer breaks. A server that then fails a ping is gone: closing the client fails every
   * call in flight at once (502 upstream_error) and reconnects with backoff.
   */
  private checkAlive(client: Client, cause: Error) {
    if (this.probing || this.client !== client) return;
    this.probing = true;
    client.ping({ timeout: 2000 }).then(
      () => (this.probing = false),
      () => {
        this.probing = false;
        if (this.client !== client) return;
        this.logger.warn({ upstream: this.config.name, err: cause.message }, 'upstream stopped answering');
        void client.close().catch(() => undefined);
      },
    );
  }

  private scheduleReconnect() {
    if (this.closed || this.reconnectTimer) return;
    const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** this.attempt++);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect().catch((err) => {
        this.logger.warn({ upstream: this.config.name, err: (err as Error).message }, 'upstream reconnect failed');
        this.scheduleReconnect();
      });
    }, delay);
    this.reconnectTimer.unref();
  }

  /** First connection: a failure is logged and retried in the background, never fatal. */
  async start() {
    try {
      await this.connect();
    } catch (err) {
      this.logger.error({ upstream: this.config.name, err: (err as Error).message }, 'upstream unavailable; will retry');
      this.scheduleReconnect();
    }
  }

  private async refreshTools(client: Client) {
    const tools: Tool[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor ? { cursor } : {});
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor);
    this.tools = tools.map((t) => ({
      name: `${this.config.prefix}${t.name}`,
      upstream: this.config.name,
      upstreamName: t.name,
      title: t.title ?? t.annotations?.title,
      description: t.description ?? '',
      inputSchema: t.inputSchema,
      outputSchema: t.outputSchema,
      annotations: t.annotations as ToolAnnotations | undefined,
      trustAnnotations: this.config.trustAnnotations === true,
    }));
    this.onToolsChanged();
  }

  async call(entry: ToolEntry, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    const client = this.client;
    if (!client) throw new AppError('upstream_error', `upstream "${this.config.name}" is not connected`, { upstream: this.config.name });
    let result: CallToolResult;
    try {
      result = (await client.callTool({ name: entry.upstreamName, arguments: args }, CallToolResultSchema, {
        timeout: this.config.callTimeoutMs,
        ...(signal ? { signal } : {}),
      })) as CallToolResult;
    } catch (err) {
      const message = (err as Error).message;
      this.logger.warn({ upstream: this.config.name, tool: entry.name, err: message }, 'upstream call failed');
      if (err instanceof McpError && err.code === ErrorCode.InvalidParams) {
        throw new AppError('bad_request', `the tool refused its arguments: ${scrubPaths(message)}`, { upstream: this.config.name });
      }
      throw new AppError('upstream_error', `upstream "${this.config.name}" failed: ${scrubPaths(message)}`, { upstream: this.config.name });
    }
    return result.isError ? this.scrubbedError(entry, result) : result;
  }

  /** A tool's own error report, without the server's paths; the log keeps it whole. */
  private scrubbedError(entry: ToolEntry, result: CallToolResult): CallToolResult {
    const texts = result.content.filter((c) => c.type === 'text').map((c) => c.text);
    this.logger.info({ upstream: this.config.name, tool: entry.name, error: texts.join('\n') }, 'tool reported an error');
    return { ...result, content: result.content.map((c) => (c.type === 'text' ? { ...c, text: scrubPaths(c.text) } : c)) };
  }

  async close() {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = null;
    await client?.close().catch(() => undefined);
  }
}

/** All upstream MCP servers; tool names are unique across them (the first upstream wins a clash). */
export class UpstreamManager implements ToolExecutor {
  private readonly upstreams: Upstream[];
  private index = new Map<string, { entry: ToolEntry; upstream: Upstream }>();
  private readonly listeners: (() => void)[] = [];

  constructor(
    configs: UpstreamConfig[],
    private readonly logger: Logger,
    transportFor?: UpstreamTransportFactory,
  ) {
    this.upstreams = configs.map((c) => new Upstream(c, logger, () => this.reindex(), transportFor));
  }

  async start() {
    await Promise.all(this.upstreams.map((u) => u.start()));
  }

  private reindex() {
    const index = new Map<string, { entry: ToolEntry; upstream: Upstream }>();
    for (const upstream of this.upstreams) {
      for (const entry of upstream.tools) {
        if (!TOOL_NAME.test(entry.name)) {
          this.logger.warn({ tool: entry.name.slice(0, 200), upstream: upstream.config.name }, 'tool name is not 1-128 letters, digits, "_", "-", "." or "/"; ignored');
          continue;
        }
        if (index.has(entry.name)) {
          this.logger.warn({ tool: entry.name, upstream: upstream.config.name }, 'tool name already taken by another upstream; ignored');
          continue;
        }
        index.set(entry.name, { entry, upstream });
      }
    }
    this.index = index;
    for (const l of this.listeners) l();
  }

  onToolsChanged(listener: () => void) {
    this.listeners.push(listener);
  }

  list(): ToolEntry[] {
    return [...this.index.values()].map((v) => v.entry);
  }

  get(name: string): ToolEntry | undefined {
    return this.index.get(name)?.entry;
  }

  status() {
    return this.upstreams.map((u) => ({ name: u.config.name, connected: u.connected, tools: u.tools.length }));
  }

  async call(name: string, args: Record<string, unknown>, options: { signal?: AbortSignal } = {}): Promise<CallToolResult> {
    const found = this.index.get(name);
    if (!found) throw new AppError('unknown_tool', `no upstream provides the tool "${name}"`);
    return found.upstream.call(found.entry, args, options.signal);
  }

  async close() {
    await Promise.all(this.upstreams.map((u) => u.close()));
  }
}
