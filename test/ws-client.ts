import WebSocket, { type ClientOptions } from 'ws';
import { parseServerFrame } from '../src/ws/protocol.js';

export interface Frame {
  type: string;
  [key: string]: any;
}

/**
 * A test approver on a real socket. It records every frame, and waits for frames in two ways:
 * `next` takes frames off a queue (two calls never return the same frame), `seen` only looks.
 */
export interface TestApprover {
  ws: WebSocket;
  /** Every text frame received, in order (as `{ raw }` when not JSON); a test may clear it. */
  frames: Frame[];
  /** Consuming: the first frame not yet taken by `next` that matches, received or still to come. */
  next(match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Non-consuming: the first frame received (or still to come) that matches; it stays for later calls. */
  seen(match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  send(message: unknown): void;
  /** Resolves with the close code once the server (or we) closed the socket. */
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}
/** The same, by its older name in the reliability suites. */
export type Approver = TestApprover;

/** Opens an approver socket, authenticated by `token` in the Authorization header if given; `options.headers` win. */
export function connectApprover(wsUrl: string, token?: string, options: ClientOptions = {}): Promise<TestApprover> {
  const ws = new WebSocket(wsUrl, { ...options, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers } });
  const frames: Frame[] = [];
  const taken = new WeakSet<Frame>();
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    try {
      // Parsed with the protocol module: a frame it does not define is kept raw, so no expected frame matches it.
      frames.push(parseServerFrame(String(data)));
    } catch {
      frames.push({ type: 'raw', raw: String(data) });
    }
    wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      wake();
    }),
  );
  const waitFor = (match: (f: Frame) => boolean, consume: boolean, timeoutMs: number) =>
    new Promise<Frame>((resolve, reject) => {
      const check = () => {
        const frame = frames.find((f) => !(consume && taken.has(f)) && match(f));
        if (frame) {
          if (consume) taken.add(frame);
          cleanup();
          resolve(frame);
        } else if (ws.readyState === WebSocket.CLOSED) {
          cleanup();
          reject(new Error(`socket closed before the expected frame; got ${JSON.stringify(frames).slice(0, 500)}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(frames).slice(0, 500)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        frames,
        next: (match, timeoutMs = 5000) => waitFor(match, true, timeoutMs),
        seen: (match, timeoutMs = 5000) => waitFor(match, false, timeoutMs),
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
