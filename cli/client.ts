/** The gateway's HTTP API, as the CLI uses it. Errors carry the server's message. */
export class GatewayClient {
  constructor(
    readonly server: string,
    readonly token: string | undefined,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.server), {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new Error(`cannot reach ${this.server}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new Error(`${response.status} from ${this.server}: ${text.slice(0, 200)}`);
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: string; message?: string } }).error;
      throw new Error(`${error?.code ?? response.status}: ${error?.message ?? text.slice(0, 200)}`);
    }
    return json as T;
  }
}

export function serverFrom(opts: { server?: string }, env = process.env): string {
  return opts.server ?? env.TOOLGATE_URL ?? `http://127.0.0.1:${env.PORT ?? 8020}`;
}

export function tokenFrom(opts: { token?: string }, env = process.env): string | undefined {
  return opts.token ?? env.TOOLGATE_TOKEN;
}
