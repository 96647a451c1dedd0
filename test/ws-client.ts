import WebSocket, { type ClientOptions } from 'ws';
import { eventually } from './helpers.js';

export interface Frame {
  type: string;
  [key: string]: any;
}

/** A test approver on a real socket: records every frame, and waits for the ones a test expects. */
export interface TestApprover {
  ws: WebSocket;
  frames: Frame[];
  /** Resolves with the first frame (seen or still to come) that matches; 5 s at most. */
  next(match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  send(message: unknown): void;
  /** Resolves with the close code once the server (or we) closed the socket. */
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

export function connectApprover(wsUrl: string, token?: string, options: ClientOptions = {}): Promise<TestApprover> {
  const ws = new WebSocket(wsUrl, { ...options, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
  const frames: Frame[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Frame));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        frames,
        next: (match, timeoutMs = 5000) => eventually(() => frames.find(match), timeoutMs),
        send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
        closed,
        close: async () => {
          if (ws.readyState !== WebSocket.CLOSED) {
            ws.terminate();
            await closed;
          }
        },
      }),
    );
  });
}
