import WebSocket from 'ws';
import type { ApprovalSummary } from '../../src/approvals/approval.js';
import { encodeClientFrame, parseServerFrame, WS_PATH, type ServerFrame } from '../../src/ws/protocol.js';

export type ApprovalMessage = ApprovalSummary;

export interface BotOptions {
  /** Called with each pushed request and the time (performance.now()) its frame was received. */
  onRequested?: (approval: ApprovalMessage, receivedAt: number) => void;
  onDecided?: (ref: string, ok: boolean, receivedAt: number) => void;
}

/**
 * A server frame through the protocol module; one that fails it is read loosely, because the bot
 * also drives older builds (`--baseline`) whose approvals lack fields added since. The bot needs
 * only the frame's type and ref and the approval's id and arguments.
 */
function readFrame(text: string): ServerFrame {
  try {
    return parseServerFrame(text);
  } catch {
    return JSON.parse(text) as ServerFrame;
  }
}

/** An approver on the live WebSocket, as the CLI's `toolgate approve` is, but a program. */
export class ApproverBot {
  private constructor(
    private readonly ws: WebSocket,
    private readonly options: BotOptions,
  ) {}

  static connect(url: string, token: string, options: BotOptions = {}): Promise<ApproverBot> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${WS_PATH}`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const bot = new ApproverBot(ws, options);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no hello from the approver socket within 10 s')), 10_000);
      ws.on('error', reject);
      ws.on('message', (data) => {
        const receivedAt = performance.now();
        const message = readFrame(String(data));
        if (message.type === 'hello') {
          clearTimeout(timer);
          resolve(bot);
        } else if (message.type === 'approval.requested') bot.options.onRequested?.(message.approval, receivedAt);
        else if (message.type === 'decide.ok') bot.options.onDecided?.(String(message.ref), true, receivedAt);
        else if (message.type === 'error') bot.options.onDecided?.(String(message.ref), false, receivedAt);
      });
    });
  }

  /** Sends an approval; returns performance.now() taken just before the frame is handed to the socket. */
  approve(id: string, ref = id): number {
    const at = performance.now();
    this.ws.send(encodeClientFrame({ type: 'decide', ref, id, decision: 'approve', reason: 'approved by the bench bot' }));
    return at;
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
      setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }
}
