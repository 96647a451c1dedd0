import type { Command } from 'commander';
import { createInterface, type Interface } from 'node:readline';
import WebSocket from 'ws';
import type { ApprovalView } from '../src/approvals/approval.js';
import { GatewayClient, serverFrom, tokenFrom } from './client.js';
import { approvalDetails, approvalLine, colours, plain, type Paint } from './format.js';

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
/** The server pings every 15 s; two missed pings mean the connection is dead though TCP has not noticed. */
const SILENCE_LIMIT_MS = 35_000;
const RECENT_LIMIT = 200;

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export interface ApproverSessionOptions {
  server: string;
  token: string;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  errors: NodeJS.WritableStream;
  /** Terminal mode: colours, a prompt, a bell on new requests. Otherwise one plain line per event. */
  interactive: boolean;
  colour: boolean;
  backoff?: BackoffOptions;
  /** How long to wait, after stdin ends, for decisions already sent to be answered. */
  drainTimeoutMs?: number;
}

type ServerFrame =
  | { type: 'hello'; approver: { id: string; role: string }; pending: ApprovalView[] }
  | { type: 'approval.requested' | 'approval.updated' | 'approval.resolved'; approval: ApprovalView }
  | { type: 'decide.ok'; ref?: string | number; approval: ApprovalView }
  | { type: 'pending'; ref?: string | number; pending: ApprovalView[] }
  | { type: 'error'; ref?: string | number; code: string; message: string };

interface Decision {
  ref: string;
  id: string;
  label: string;
  decision: 'approve' | 'reject';
  reason: string;
}

const HELP = [
  'a <id> <reason>   approve a request (id: its short id, or any unique prefix)',
  'r <id> <reason>   reject a request',
  'list              the pending requests, fresh from the gateway',
  'show <id>         everything about one request',
  'quit              leave (after decisions already sent are answered)',
  'help              this text',
];

/**
 * The live approver session: one WebSocket to /ws/approvals that pushes requests as they are made
 * and carries decisions back. A dropped connection is retried with exponential backoff, and the
 * `hello` of the new connection replaces the pending list, so nothing decided or requested while
 * away is missed.
 */
export class ApproverSession {
  private readonly paint: Paint;
  private readonly wsUrl: string;
  private readonly backoff: BackoffOptions;
  private readonly pending = new Map<string, ApprovalView>();
  /** Requests seen resolved, kept so `show` and duplicate pushes need no round trip. */
  private readonly recent = new Map<string, ApprovalView>();
  private readonly unanswered = new Map<string, Decision>();
  private readonly queued: Decision[] = [];
  private socket: WebSocket | null = null;
  private connected = false;
  private attempt = 0;
  private nextRef = 1;
  private everConnected = false;
  private stopping = false;
  /** Set once we close the socket ourselves, so its close ends the session instead of reconnecting. */
  private leaving = false;
  private exitCode = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private drainTimer: NodeJS.Timeout | null = null;
  private rl: Interface | null = null;
  private finish: (code: number) => void = () => {};

  constructor(private readonly options: ApproverSessionOptions) {
    this.paint = options.colour ? colours : plain;
    this.backoff = options.backoff ?? { initialMs: 250, maxMs: 10_000 };
    const url = new URL(options.server);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/ws/approvals`;
    url.search = '';
    this.wsUrl = url.toString();
  }

  /** Resolves with the exit code: 0 after `quit` or the end of stdin, 1 when the token is refused. */
  run(): Promise<number> {
    return new Promise((resolve) => {
      this.finish = resolve;
      const { input, output, interactive } = this.options;
      this.rl = createInterface({ input, ...(interactive ? { output, terminal: true } : { terminal: false }) });
      this.rl.setPrompt(`${this.paint.bold('approve')}> `);
      this.rl.on('line', (line) => this.onCommand(line));
      this.rl.on('close', () => this.stop());
      this.rl.on('SIGINT', () => this.stop());
      this.connect();
    });
  }

  // ---- the connection ---------------------------------------------------------------------

  private connect() {
    if (this.stopping) return;
    const socket = new WebSocket(this.wsUrl, { headers: { authorization: `Bearer ${this.options.token}` }, handshakeTimeout: 10_000 });
    this.socket = socket;
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(data.toString()) as ServerFrame;
      } catch {
        return this.print(`error bad_frame: the gateway sent a frame that is not JSON`);
      }
      this.onFrame(frame);
    });
    socket.on('ping', () => this.armSilenceTimer());
    socket.on('unexpected-response', (_req, res) => {
      this.print(`error connect: the gateway answered ${res.statusCode} instead of upgrading`);
      socket.terminate();
    });
    // 'close' follows every 'error'; the cause is printed there, once per attempt.
    let lastError: Error | undefined;
    socket.on('error', (err) => (lastError = err));
    socket.on('close', (code, reason) => this.onClose(socket, code, reason.toString(), lastError));
  }

  private armSilenceTimer() {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.socket?.terminate(), SILENCE_LIMIT_MS);
    this.silenceTimer.unref();
  }

  private onClose(socket: WebSocket, code: number, reason: string, error: Error | undefined) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.connected = false;
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    if (code === CLOSE_UNAUTHORIZED || code === CLOSE_FORBIDDEN) {
      const why = code === CLOSE_FORBIDDEN ? 'this token may not approve' : 'the token was refused';
      this.options.errors.write(`toolgate: ${why} (${code}${reason ? `: ${reason}` : ''})\n`);
      return this.end(1);
    }
    if (this.leaving) return this.end(this.exitCode);
    const lost = this.unanswered.size;
    for (const d of this.unanswered.values()) {
      this.print(`error ${d.label} connection_lost: the connection dropped before the answer; check with "show ${d.label}"`);
    }
    this.unanswered.clear();
    // Leaving with nothing left to send: a reconnect would serve no one.
    if (this.stopping && this.queued.length === 0) {
      if (!this.everConnected) this.options.errors.write(`toolgate: could not reach ${this.wsUrl}\n`);
      return this.end(!this.everConnected || lost > 0 ? 1 : this.exitCode);
    }
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt++;
    const cause = error ? (error as Error & { code?: string }).code ?? error.message : `${code}${reason ? ` ${reason}` : ''}`;
    this.print(`${this.everConnected ? 'disconnected' : 'unreachable'} ${this.wsUrl} (${cause}); retrying in ${(delay / 1000).toFixed(1)}s`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private onFrame(frame: ServerFrame) {
    switch (frame.type) {
      case 'hello': {
        this.connected = true;
        this.attempt = 0;
        this.armSilenceTimer();
        const verb = this.everConnected ? 'reconnected' : 'connected';
        this.everConnected = true;
        this.replacePending(frame.pending);
        this.print(`${verb} ${this.wsUrl} as ${frame.approver.id} (${frame.approver.role}); ${frame.pending.length} pending`);
        this.printPending();
        for (const d of this.queued.splice(0)) this.send(d);
        return this.maybeDrained();
      }
      case 'pending':
        this.replacePending(frame.pending);
        this.print(`${frame.pending.length} pending`);
        return this.printPending();
      case 'approval.requested':
      case 'approval.updated':
      case 'approval.resolved':
        return this.onApproval(frame.type, frame.approval);
      case 'decide.ok': {
        const d = frame.ref === undefined ? undefined : this.unanswered.get(String(frame.ref));
        if (d) this.unanswered.delete(d.ref);
        this.remember(frame.approval);
        const tally = frame.approval.status === 'pending' ? ` (${approvalsOf(frame.approval)}/${frame.approval.requiredApprovals} approvals)` : '';
        this.print(`${this.paint.green('ok')} ${frame.approval.shortId} ${d?.decision ?? 'decision'} recorded; now ${frame.approval.status}${tally}`);
        return this.maybeDrained();
      }
      case 'error': {
        const d = frame.ref === undefined ? undefined : this.unanswered.get(String(frame.ref));
        if (d) this.unanswered.delete(d.ref);
        this.print(`${this.paint.red('error')}${d ? ` ${d.label}` : ''} ${frame.code}: ${frame.message}`);
        return this.maybeDrained();
      }
    }
  }

  private onApproval(type: 'approval.requested' | 'approval.updated' | 'approval.resolved', approval: ApprovalView) {
    if (approval.status === 'pending') {
      const known = this.pending.has(approval.id);
      this.pending.set(approval.id, approval);
      if (type === 'approval.requested' && known) return;
      if (type === 'approval.requested') this.print(`${this.options.interactive ? '\x07' : ''}requested ${approvalLine(approval, this.paint)}`);
      else this.print(`updated ${approvalLine(approval, this.paint)}`);
      return;
    }
    // A resolution (or a request found by the fallback already decided): print it once.
    if (this.recent.get(approval.id)?.status === approval.status) return;
    this.remember(approval);
    this.print(`resolved ${resolutionLine(approval, this.paint)}`);
  }

  /** Resync: what was pending here but is not any more was settled while we were not listening. */
  private replacePending(list: ApprovalView[]) {
    const fresh = new Set(list.map((a) => a.id));
    for (const a of this.pending.values()) {
      if (!fresh.has(a.id)) this.print(`gone ${this.paint.bold(this.paint.cyan(a.shortId))} ${a.tool}: settled while disconnected; "show ${a.shortId}" for the outcome`);
    }
    this.pending.clear();
    for (const a of list) this.pending.set(a.id, a);
  }

  private remember(approval: ApprovalView) {
    if (approval.status === 'pending') return void this.pending.set(approval.id, approval);
    this.pending.delete(approval.id);
    this.recent.delete(approval.id);
    this.recent.set(approval.id, approval);
    if (this.recent.size > RECENT_LIMIT) this.recent.delete(this.recent.keys().next().value!);
  }

  private printPending() {
    for (const a of this.pending.values()) this.print(`pending ${approvalLine(a, this.paint)}`);
  }

  // ---- commands ---------------------------------------------------------------------------

  private onCommand(line: string) {
    if (this.stopping) return;
    const [word = '', id, ...rest] = line.trim().split(/\s+/);
    switch (word.toLowerCase()) {
      case '':
        return this.prompt();
      case 'a':
      case 'approve':
      case 'r':
      case 'reject': {
        const decision = word.toLowerCase().startsWith('a') ? 'approve' : 'reject';
        const reason = rest.join(' ');
        if (!id || !reason) return this.print(`error usage: ${word} <id> <reason>`);
        const full = this.expand(id);
        const d: Decision = { ref: `d${this.nextRef++}`, id: full, label: this.labelOf(full, id), decision, reason };
        if (this.connected) this.send(d);
        else {
          this.queued.push(d);
          this.print(`queued ${d.label} ${decision}: sent once reconnected`);
        }
        return;
      }
      case 'l':
      case 'ls':
      case 'list':
        if (this.connected && this.socket) return this.socket.send(JSON.stringify({ type: 'list', ref: `l${this.nextRef++}` }));
        this.print(`${this.pending.size} pending (not connected: as last seen)`);
        return this.printPending();
      case 's':
      case 'show':
        if (!id) return this.print('error usage: show <id>');
        return void this.show(id);
      case 'q':
      case 'quit':
      case 'exit':
        return this.stop();
      case 'h':
      case 'help':
      case '?':
        for (const h of HELP) this.print(h);
        return;
      default:
        this.print(`error unknown command "${word}"; type help`);
    }
  }

  /** A prefix shorter than the server accepts is expanded against what this session knows. */
  private expand(ref: string): string {
    const r = ref.toLowerCase();
    const matches = [...this.pending.keys(), ...this.recent.keys()].filter((id) => id.startsWith(r) || id.replace(/-/g, '').startsWith(r));
    return matches.length === 1 ? matches[0]! : r;
  }

  private labelOf(id: string, typed: string): string {
    return (this.pending.get(id) ?? this.recent.get(id))?.shortId ?? typed;
  }

  private send(d: Decision) {
    this.unanswered.set(d.ref, d);
    this.socket!.send(JSON.stringify({ type: 'decide', ref: d.ref, id: d.id, decision: d.decision, reason: d.reason }));
  }

  private async show(ref: string) {
    const id = this.expand(ref);
    const known = this.pending.get(id) ?? this.recent.get(id);
    if (known) return this.print(approvalDetails(known, this.paint));
    try {
      const res = await new GatewayClient(this.options.server, this.options.token).request<{ approval: ApprovalView }>('GET', `/api/approvals/${encodeURIComponent(id)}`);
      this.print(approvalDetails(res.approval, this.paint));
    } catch (err) {
      this.print(`error ${ref} ${(err as Error).message}`);
    }
  }

  // ---- output and ending ------------------------------------------------------------------

  private print(text: string) {
    const { output, interactive } = this.options;
    if (interactive && this.rl && !this.stopping) {
      output.write(`\r\x1b[K${text}\n`);
      this.rl.prompt(true);
    } else output.write(`${text}\n`);
  }

  private prompt() {
    if (this.options.interactive && !this.stopping) this.rl?.prompt();
  }

  /** quit / end of stdin: leave once every decision already typed has its answer. */
  private stop() {
    if (this.stopping) return;
    this.stopping = true;
    const limit = this.options.drainTimeoutMs ?? 30_000;
    this.drainTimer = setTimeout(() => {
      const left = this.unanswered.size + this.queued.length;
      this.options.errors.write(`toolgate: gave up waiting for ${left} decision${left === 1 ? '' : 's'} to be answered\n`);
      this.exitCode = 1;
      this.closeSocket();
    }, limit);
    this.maybeDrained();
  }

  private maybeDrained() {
    if (!this.stopping || this.unanswered.size > 0 || this.queued.length > 0) return;
    // Even with nothing to send, the first connection is seen through: it checks the token and prints what is pending.
    if (!this.everConnected && this.socket) return;
    if (!this.everConnected) {
      this.options.errors.write(`toolgate: could not reach ${this.wsUrl}\n`);
      this.exitCode = 1;
    }
    this.closeSocket();
  }

  private closeSocket() {
    this.leaving = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.socket && this.socket.readyState !== WebSocket.CLOSED) {
      this.socket.close(1000, 'approver left');
      // A server that never answers the close handshake must not keep us here.
      setTimeout(() => this.socket?.terminate(), 2000).unref();
    } else this.end(this.exitCode);
  }

  private end(code: number) {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.stopping = true;
    this.rl?.close();
    this.finish(code);
  }
}

function approvalsOf(a: ApprovalView): number {
  return a.decisions.filter((d) => d.verdict === 'approve').length;
}

/** `<shortId> <status> <tool>` and who decided why, or the reason it ended without a decision. */
export function resolutionLine(a: ApprovalView, p: Paint): string {
  const colour = a.status === 'approved' ? p.green : a.status === 'rejected' ? p.red : p.yellow;
  const last = a.decisions.at(-1);
  const why = (a.status === 'approved' || a.status === 'rejected') && last ? `by ${last.approver}: ${last.reason}` : (a.statusReason ?? '');
  return `${p.bold(p.cyan(a.shortId))} ${colour(a.status)} ${a.tool} ${why}`.trimEnd();
}

export function approveCommand(program: Command) {
  program
    .command('approve')
    .description('live approver session: pushed requests, decisions by short id (a/r/list/show/quit)')
    .option('--plain', 'plain lines without colours or prompt, even on a terminal')
    .action(async (opts: { plain?: boolean }, cmd: Command) => {
      const globals = cmd.optsWithGlobals<{ server?: string; token?: string }>();
      const token = tokenFrom(globals);
      if (!token) throw new Error('an approver token is required: pass --token or set TOOLGATE_TOKEN');
      const interactive = !opts.plain && Boolean(process.stdin.isTTY && process.stdout.isTTY);
      const session = new ApproverSession({
        server: serverFrom(globals),
        token,
        input: process.stdin,
        output: process.stdout,
        errors: process.stderr,
        interactive,
        colour: interactive && !process.env.NO_COLOR,
      });
      process.exit(await session.run());
    });
}
