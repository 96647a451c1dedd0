/**
 * A caller waiting for its approver holds its HTTP request for minutes, ten thousand callers at
 * once (docs/benchmarks.md, "scale"). Every middleware layer the request went through stays a
 * suspended frame (a generator, its registers, a promise and closures) until the answer: the tool
 * call route runs its checks and its body validation as one layer (`heldRoute`). Measured with a
 * heap snapshot of 1,000 waiting callers: 31 KiB of live heap each through the separate layers,
 * 21 KiB through the folded ones.
 */
import { describe, expect, it } from 'vitest';
import { api, startTestGateway } from './helpers.js';

/** The handlers Hono runs for `method path`, in order (the app's own middleware included). */
function layersFor(app: { routes: { method: string; path: string; handler: unknown }[] }, method: string, path: string): unknown[] {
  const matches = (pattern: string) => new RegExp(`^${pattern.replace(/\/\*$/, '(/.*)?').replace(/:[^/]+/g, '[^/]+')}$`).test(path);
  return app.routes.filter((r) => (r.method === method || r.method === 'ALL') && matches(r.path)).map((r) => r.handler);
}

describe('callers held for an approval', () => {
  it('go through at most six layers on POST /tools/{name}/call, and the folded checks still refuse what they refused', async () => {
    const t = await startTestGateway();
    try {
      const layers = layersFor(t.app, 'POST', '/tools/write_file/call');
      // request context, shutdown + browser checks, failed-auth limit, body limit, the route's checks + body, the handler
      expect(layers.length, String(layers.map((l) => (l as { name?: string }).name))).toBeLessThanOrEqual(6);

      const call = (init: Parameters<typeof api>[3]) => api(t.app, 'POST', '/tools/echo/call', init);
      expect((await call({ body: { arguments: {} } })).status).toBe(401);
      expect((await call({ token: t.tokens.dev, rawBody: '{"arguments":', headers: { 'content-type': 'application/json' } })).body.error.code).toBe('invalid_json');
      const invalid = await call({ token: t.tokens.dev, body: { arguments: [], extra: 1 } });
      expect(invalid.status).toBe(400);
      expect(invalid.body.error.code).toBe('validation_failed');
      expect(invalid.body.error.message).toMatch(/^body/);
      expect((await call({ token: t.tokens.dev, rawBody: '', headers: { 'content-type': 'text/plain' } })).body.error.code).toBe('unsupported_media_type');
      const empty = await call({ token: t.tokens.dev, rawBody: '', headers: { 'content-type': 'application/json' } });
      expect(empty.status).toBe(200);
      const ran = await call({ token: t.tokens.dev, body: { arguments: { message: 'hi' } } });
      expect(ran.status).toBe(200);
      expect(JSON.stringify(ran.body.result)).toContain('hi');
    } finally {
      await t.close();
    }
  });
});
