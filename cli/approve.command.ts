import type { Command } from 'commander';
import { createInterface, type Interface } from 'node:readline';
import WebSocket from 'ws';
import { MIN_ID_PREFIX, type ApprovalSummary, type ApprovalView } from '../src/approvals/approval.js';
import { CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, encodeClientFrame, parseServerFrame, WS_PATH, type ServerFrame } from '../src/ws/protocol.js';
import { GatewayClient, serverFrom, tokenFrom } from './client.js';
import { approvalDetails, approvalLine, colours, plain, term, TerminalText, type Paint } from './format.js';
import type { GrantRequest } from '../src/approvals/grants.js';
import { broadened, grantPreview, splitGrantFlags } from './grant-flags.js';

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
  /** How long a session that has never connected keeps trying before it gives up (exit 1). */
  connectTimeoutMs?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

interface Decision {
  ref: string;
  id: string;
  label: string;
  decision: 'approve' | 'reject';
  reason: string;
  grant?: GrantRequest | undefined;
}

const HELP = [
  'a <id> <reason>   approve a request (id: its short id, or a unique prefix of 8 or more characters)',
  '                  add --for 15m and/or --times 10 to allow the same call again (a standing approval);',
  '                  broaden it with --match key=value|prefix/**|glob or --any-args (confirm with y)',
  'r <id> <reason>   reject a request',
  'list              the pending requests, fresh from the gateway',
  'show <id>         everything about one request, fetched fresh, arguments whole',
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
  private readonly pending = new Map<string, ApprovalSummary>();
  /** Requests seen resolved, kept to print each resolution once and to label decisions. */
  private readonly recent = new Map<string, ApprovalSummary>();
  private readonly unanswered = new Map<string, Decision>();
  private readonly queued: Decision[] = [];
  /** Lines typed before the first connection: run, in order, once it is made. */
  private readonly early: string[] = [];
  /** `list` and `show` requests still to be answered (leaving waits for them too). */
  private readonly outstanding = new Set<string>();
  /** Why the gateway refused this session, from its last `error` frame before the close. */
  private refusal: string | null = null;
  private hintGiven = false;
  private promptShown = false;
  private connectTimer: NodeJS.Timeout | null = null;
  /** A broadened standing approval shown to the approver, sent only once they answer `y`. */
  private awaitingConfirmation: Decision | null = null;
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
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${WS_PATH}`;
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
      this.rl.on('line', (line) => this.onLine(line));
      this.rl.on('close', () => this.stop());
      this.rl.on('SIGINT', () => this.stop());
      // Reconnecting after a drop is unbounded; a session that never got through gives up.
      this.connectTimer = setTimeout(() => this.giveUpConnecting(), this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
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
        frame = parseServerFrame(data.toString());
      } catch {
        return this.print(term`error bad_frame: the gateway sent a frame this toolgate does not know (is it another version?)`);
      }
      this.onFrame(frame);
    });
    socket.on('ping', () => this.armSilenceTimer());
    // 'close' follows every 'error'; the cause is printed there, once per attempt.
    let lastError: Error | undefined;
    socket.on('unexpected-response', (_req, res) => {
      lastError = new Error(`the server answered HTTP ${res.statusCode} instead of upgrading to a WebSocket`);
      socket.terminate();
    });
    socket.on('error', (err) => (lastError ??= err));
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
      const detail = reason || this.refusal;
      this.fail(term`toolgate: ${why} (${code}${detail ? term`: ${detail}` : ''})`);
      return this.end(1);
    }
    if (this.leaving) return this.end(this.exitCode);
    for (const d of this.unanswered.values()) {
      this.print(term`error ${d.label} connection_lost: the connection dropped before the answer; check with "show ${d.label}"`);
      this.exitCode = 1;
    }
    this.unanswered.clear();
    for (const ref of this.outstanding) if (ref.startsWith('l')) this.outstanding.delete(ref);
    const cause = error ? ((error as Error & { code?: string }).code ?? error.message) : `${code}${reason ? ` ${reason}` : ''}`;
    if (!this.everConnected && !this.hintGiven) {
      this.hintGiven = true;
      const limit = Math.round((this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) / 1000);
      this.fail(
        term`toolgate: cannot connect to ${this.wsUrl} (${cause}). Is the gateway running at ${this.options.server}? Point the CLI at it with --server or TOOLGATE_URL. Retrying for ${limit}s.`,
      );
    }
    // Leaving with nothing left to send: a reconnect would serve no one.
    if (this.stopping && this.queued.length === 0 && this.early.length === 0) {
      if (!this.everConnected) this.fail(term`toolgate: could not reach ${this.wsUrl}`);
      return this.end(!this.everConnected ? 1 : this.exitCode);
    }
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt++;
    this.print(term`${this.everConnected ? 'disconnected' : 'unreachable'} ${this.wsUrl} (${cause}); retrying in ${(delay / 1000).toFixed(1)}s`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  /** The gateway would not have this session: it cannot connect at all. */
  private giveUpConnecting() {
    this.connectTimer = null;
    if (this.everConnected) return;
    const seconds = Math.round((this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) / 1000);
    this.fail(term`toolgate: gave up: no connection to ${this.wsUrl} after ${seconds}s`);
    const socket = this.socket;
    this.socket = null;
    socket?.terminate();
    this.end(1);
  }

  private onFrame(frame: ServerFrame) {
    switch (frame.type) {
      case 'hello': {
        this.connected = true;
        this.attempt = 0;
        this.armSilenceTimer();
        const first = !this.everConnected;
        this.everConnected = true;
        if (this.connectTimer) clearTimeout(this.connectTimer);
        this.connectTimer = null;
        this.replacePending(frame.pending);
        this.print(term`${first ? 'connected' : 'reconnected'} ${this.wsUrl} as ${frame.approver.id} (${frame.approver.role}); ${frame.pending.length} pending`);
        this.printPending();
        for (const d of this.queued.splice(0)) this.send(d);
        for (const line of this.early.splice(0)) this.runCommand(line);
        this.prompt();
        return this.maybeDrained();
      }
      case 'pending':
        if (frame.ref !== undefined) this.outstanding.delete(String(frame.ref));
        this.replacePending(frame.pending);
        this.print(term`${frame.pending.length} pending`);
        this.printPending();
        return this.maybeDrained();
      case 'approval.requested':
      case 'approval.updated':
      case 'approval.resolved':
        return this.onApproval(frame.type, frame.approval);
      case 'decide.ok': {
        const d = frame.ref === undefined ? undefined : this.unanswered.get(String(frame.ref));
        if (d) this.unanswered.delete(d.ref);
        this.remember(frame.approval);
        const tally = frame.approval.status === 'pending' ? ` (${approvalsOf(frame.approval)}/${frame.approval.requiredApprovals} approvals)` : '';
        this.print(term`${this.paint.green('ok')} ${frame.approval.shortId} ${d?.decision ?? 'decision'} recorded; now ${frame.approval.status}${tally}`);
        if (frame.grant) this.print(term`granted ${frame.grant.id.slice(0, 8)}: ${frame.grant.tool} for ${frame.grant.requester} until ${frame.grant.expiresAt}, ${String(frame.grant.usesLeft ?? 'unlimited')} calls, ${frame.grant.scopeText}`);
        else if (d?.grant && frame.approval.status === 'pending') this.print(term`standing approval asked for: made once the quorum is reached, if every approver asks for one`);
        else if (d?.grant) this.print(term`no standing approval was made`);
        return this.maybeDrained();
      }
      case 'error': {
        // Before the hello, an error is the refusal that the close will report: say it once, there.
        if (!this.connected && frame.ref === undefined) return void (this.refusal = frame.message);
        const d = frame.ref === undefined ? undefined : this.unanswered.get(String(frame.ref));
        if (d) {
          this.unanswered.delete(d.ref);
          this.exitCode = 1;
        }
        if (frame.ref !== undefined) this.outstanding.delete(String(frame.ref));
        this.print(term`${this.paint.red('error')}${d ? ` ${d.label}` : ''} ${frame.code}: ${frame.message}`);
        return this.maybeDrained();
      }
    }
  }

  private onApproval(type: 'approval.requested' | 'approval.updated' | 'approval.resolved', approval: ApprovalSummary) {
    if (approval.status === 'pending') {
      const known = this.pending.has(approval.id);
      this.pending.set(approval.id, approval);
      if (type === 'approval.requested' && known) return;
      if (type === 'approval.requested') this.print(term`${this.options.interactive ? new TerminalTextBell() : ''}requested ${approvalLine(approval, this.paint)}`);
      else this.print(term`updated ${approvalLine(approval, this.paint)}`);
      return;
    }
    // A resolution (or a request found by the fallback already decided): print it once.
    if (this.recent.get(approval.id)?.status === approval.status) return;
    this.remember(approval);
    this.print(term`resolved ${resolutionLine(approval, this.paint)}`);
  }

  /** Resync: what was pending here but is not any more was settled while we were not listening. */
  private replacePending(list: ApprovalSummary[]) {
    const fresh = new Set(list.map((a) => a.id));
    for (const a of this.pending.values()) {
      if (!fresh.has(a.id)) this.print(term`gone ${this.paint.bold(this.paint.cyan(a.shortId))} ${a.tool}: settled while disconnected; "show ${a.shortId}" for the outcome`);
    }
    this.pending.clear();
    for (const a of list) this.pending.set(a.id, a);
  }

  private remember(approval: ApprovalSummary) {
    if (approval.status === 'pending') return void this.pending.set(approval.id, approval);
    this.pending.delete(approval.id);
    this.recent.delete(approval.id);
    this.recent.set(approval.id, approval);
    if (this.recent.size > RECENT_LIMIT) this.recent.delete(this.recent.keys().next().value!);
  }

  private printPending() {
    for (const a of this.pending.values()) this.print(term`pending ${approvalLine(a, this.paint)}`);
  }

  // ---- commands ---------------------------------------------------------------------------

  private onLine(line: string) {
    if (this.stopping) return;
    this.promptShown = false;
    // Typed before the first connection: kept until it is made, so nothing fails for being early.
    if (!this.everConnected) return void (line.trim() && this.early.push(line));
    this.runCommand(line);
  }

  private runCommand(line: string) {
    if (this.awaitingConfirmation) {
      const d = this.awaitingConfirmation;
      this.awaitingConfirmation = null;
      if (/^y(es)?$/i.test(line.trim())) return this.dispatch(d);
      return this.print(term`cancelled: ${d.label} was not approved`);
    }
    const [word = '', id, ...rest] = line.trim().split(/\s+/);
    switch (word.toLowerCase()) {
      case '':
        return this.prompt();
      case 'a':
      case 'approve':
      case 'r':
      case 'reject': {
        const decision = word.toLowerCase().startsWith('a') ? 'approve' : 'reject';
        let parsed: ReturnType<typeof splitGrantFlags>;
        let preview: string | undefined;
        try {
          parsed = splitGrantFlags(rest);
          if (parsed.flags.grant && decision === 'reject') throw new Error('a standing approval goes with an approval, not a rejection');
          if (parsed.flags.grant) preview = grantPreview(parsed.flags.grant);
        } catch (err) {
          this.exitCode = 1;
          return this.print(term`error ${(err as Error).message}`);
        }
        const { reason, flags } = parsed;
        if (!id || !reason) {
          this.exitCode = 1;
          return this.print(term`error usage: ${word} <id> <reason> [--for 15m] [--times N] [--match key=pattern] [--any-args]`);
        }
        // Sent as typed: the gateway resolves the id by the one rule every client shares.
        const d: Decision = { ref: `d${this.nextRef++}`, id, label: this.labelOf(id), decision, reason, ...(flags.grant ? { grant: flags.grant } : {}) };
        if (preview) this.print(term`${d.label} ${preview}`);
        if (flags.grant && broadened(flags.grant) && !flags.yes) {
          this.awaitingConfirmation = d;
          return this.print(term`this is broader than the exact arguments: type y to approve with it, anything else to cancel`);
        }
        return this.dispatch(d);
      }
      case 'l':
      case 'ls':
      case 'list':
        if (this.connected && this.socket) {
          const ref = `l${this.nextRef++}`;
          this.outstanding.add(ref);
          return this.socket.send(encodeClientFrame({ type: 'list', ref }));
        }
        this.print(term`${this.pending.size} pending (not connected: as last seen)`);
        return this.printPending();
      case 's':
      case 'show':
        if (!id) return this.print(term`error usage: show <id>`);
        return void this.show(id);
      case 'q':
      case 'quit':
      case 'exit':
        return this.stop();
      case 'h':
      case 'help':
      case '?':
        for (const h of HELP) this.print(term`${h}`);
        return;
      default:
        this.print(term`error unknown command "${word}"; type help`);
    }
  }

  /** The short id of the one known request a long enough typed id names, else what was typed. */
  private labelOf(typed: string): string {
    const t = typed.toLowerCase().replace(/-/g, '');
    if (t.length < MIN_ID_PREFIX) return typed;
    const known = [...this.pending.values(), ...this.recent.values()].filter((a) => a.id.replace(/-/g, '').startsWith(t));
    return known.length === 1 ? known[0]!.shortId : typed;
  }

  private dispatch(d: Decision) {
    if (this.connected) this.send(d);
    else {
      this.queued.push(d);
      this.print(term`queued ${d.label} ${d.decision}: sent once reconnected`);
    }
  }

  private send(d: Decision) {
    this.unanswered.set(d.ref, d);
    this.socket!.send(encodeClientFrame({ type: 'decide', ref: d.ref, id: d.id, decision: d.decision, reason: d.reason, ...(d.grant ? { grant: d.grant } : {}) }));
  }

  /** Always fetched: what this session last saw may be stale (a `running` that has long finished). */
  private async show(ref: string) {
    const key = `s${this.nextRef++}`;
    this.outstanding.add(key);
    try {
      const res = await new GatewayClient(this.options.server, this.options.token).request<{ approval: ApprovalView }>('GET', `/api/approvals/${encodeURIComponent(ref)}`);
      this.print(approvalDetails(res.approval, this.paint));
    } catch (err) {
      this.print(term`${this.paint.red('error')} ${ref} ${(err as Error).message}`);
    } finally {
      this.outstanding.delete(key);
      this.maybeDrained();
    }
  }

  // ---- output and ending ------------------------------------------------------------------

  /** The only way text reaches stdout: TerminalText, whose data parts are all escaped. */
  private print(text: TerminalText) {
    const { output, interactive } = this.options;
    if (interactive && this.rl && !this.stopping && this.everConnected) {
      output.write(`\r\x1b[K${text.text}\n`);
      this.rl.prompt(true);
      this.promptShown = true;
    } else output.write(`${text.text}\n`);
  }

  /** And the only way to stderr: on a line of its own, never glued to a prompt. */
  private fail(text: TerminalText) {
    this.leavePromptLine();
    this.options.errors.write(`${text.text}\n`);
  }

  private prompt() {
    if (this.options.interactive && !this.stopping && this.everConnected) {
      this.rl?.prompt();
      this.promptShown = true;
    }
  }

  /** Ends the prompt's line, so whatever comes next (the shell's prompt too) starts on a new one. */
  private leavePromptLine() {
    if (!this.promptShown) return;
    this.promptShown = false;
    this.options.output.write('\n');
  }

  /** quit / end of stdin / Ctrl-C: leave once every decision already typed has its answer. */
  private stop() {
    if (this.stopping) return;
    this.leavePromptLine();
    this.stopping = true;
    const limit = this.options.drainTimeoutMs ?? 30_000;
    this.drainTimer = setTimeout(() => {
      const left = this.unanswered.size + this.queued.length + this.early.length + this.outstanding.size;
      this.fail(term`toolgate: gave up waiting for ${left} command${left === 1 ? '' : 's'} to be answered`);
      this.exitCode = 1;
      this.closeSocket();
    }, limit);
    this.maybeDrained();
  }

  private maybeDrained() {
    if (!this.stopping || this.unanswered.size > 0 || this.queued.length > 0 || this.early.length > 0 || this.outstanding.size > 0) return;
    // Even with nothing to send, the first connection is seen through: it checks the token and prints what is pending.
    if (!this.everConnected && this.socket) return;
    if (!this.everConnected) {
      this.fail(term`toolgate: could not reach ${this.wsUrl}`);
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
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.leavePromptLine();
    this.stopping = true;
    this.rl?.close();
    this.finish(code);
  }
}

function approvalsOf(a: ApprovalView): number {
  return a.decisions.filter((d) => d.verdict === 'approve').length;
}

/** The terminal bell, the one control character the session sends on purpose (a new request). */
class TerminalTextBell extends TerminalText {
  constructor() {
    super('\x07');
  }
}

/** `<shortId> <status> <tool>` and who decided why, or the reason it ended without a decision. */
export function resolutionLine(a: ApprovalView, p: Paint): TerminalText {
  const colour = a.status === 'approved' ? p.green : a.status === 'rejected' ? p.red : p.yellow;
  const last = a.decisions.at(-1);
  const why = (a.status === 'approved' || a.status === 'rejected') && last ? term`by ${last.approver}: ${last.reason}` : term`${a.statusReason ?? ''}`;
  return why.text ? term`${p.bold(p.cyan(a.shortId))} ${colour(a.status)} ${a.tool} ${why}` : term`${p.bold(p.cyan(a.shortId))} ${colour(a.status)} ${a.tool}`;
}

export function approveCommand(program: Command) {
  program
    .command('approve')
    .description('live approver session: pushed requests, decisions by short id (a/r/list/show/quit)')
    .option('--plain', 'plain lines without colours or prompt, even on a terminal')
    .option('--connect-timeout <seconds>', 'give up (exit 1) when the first connection is not made within this time', '30')
    .action(async (opts: { plain?: boolean; connectTimeout: string }, cmd: Command) => {
      const globals = cmd.optsWithGlobals<{ server?: string; token?: string }>();
      const token = tokenFrom(globals);
      if (!token) throw new Error('an approver token is required: pass --token or set TOOLGATE_TOKEN');
      const connectTimeout = Number(opts.connectTimeout);
      if (!Number.isFinite(connectTimeout) || connectTimeout <= 0) throw new Error('--connect-timeout must be a positive number of seconds');
      const interactive = !opts.plain && Boolean(process.stdin.isTTY && process.stdout.isTTY);
      const session = new ApproverSession({
        server: serverFrom(globals),
        token,
        input: process.stdin,
        output: process.stdout,
        errors: process.stderr,
        interactive,
        colour: interactive && !process.env.NO_COLOR,
        connectTimeoutMs: connectTimeout * 1000,
      });
      process.exit(await session.run());
    });
}
