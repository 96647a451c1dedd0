import WebSocket from 'ws';

/** A test-side approver socket that queues frames, so none is missed between awaits. */
export interface Approver {
  ws: WebSocket;
  frames: any[];
  next(predicate: (frame: any) => boolean, timeoutMs?: number): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export function connectApprover(wsUrl: string, token?: string, options: { headers?: Record<string, string> } = {}): Promise<Approver> {
  const ws = new WebSocket(wsUrl, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers } });
  const frames: any[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      try {
        frames.push(JSON.parse(String(data)));
      } catch {
        frames.push({ raw: String(data) });
      }
    }
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      for (const w of [...waiters]) w();
    }),
  );
  const next = (predicate: (frame: any) => boolean, timeoutMs = 5000) =>
    new Promise<any>((resolve, reject) => {
      const check = () => {
        const i = frames.findIndex(predicate);
        if (i >= 0) {
          cleanup();
          resolve(frames.splice(i, 1)[0]);
        } else if (ws.readyState === WebSocket.CLOSED) {
          cleanup();
          reject(new Error('socket closed before the expected frame'));
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
    ws.once('open', () => resolve({ ws, frames, next, closed, close: () => ws.terminate() }));
    ws.once('error', reject);
  });
}
