import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver got. */
export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body as JSON, when it is JSON. */
  json: any;
}

export interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer after this many milliseconds (a slow receiver). */
  delayMs?: number;
}

/**
 * A real HTTP receiver on 127.0.0.1: records every request and answers as `answer` says (200 by
 * default). `stop()` closes it (connections refused from then on) and `restart()` listens again
 * on the same port, as a receiver that was down and came back.
 */
export class TestReceiver {
  readonly received: Received[] = [];
  answer: (r: Received) => Answer = () => ({ status: 200, body: 'ok' });
  private server: Server | null = null;
  port = 0;

  static async start(port = 0): Promise<TestReceiver> {
    const receiver = new TestReceiver();
    await receiver.listen(port);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests to `path` (all when unset), in the order they came. */
  to(path?: string): Received[] {
    return path === undefined ? this.received : this.received.filter((r) => r.path === path);
  }

  private listen(port: number): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const got: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json };
        this.received.push(got);
        const a = this.answer(got);
        const send = () => {
          res.writeHead(a.status ?? 200, { 'content-type': 'text/plain', ...a.headers });
          res.end(a.body ?? '');
        };
        if (a.delayMs) setTimeout(send, a.delayMs);
        else send();
      });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** Stops listening and drops open connections: the receiver is down. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async restart(): Promise<void> {
    await this.listen(this.port);
  }

  close(): Promise<void> {
    return this.stop();
  }
}
