import { Hono } from 'hono';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errorResponse } from '../../src/http/error-response.js';
import type { AppEnv } from '../../src/http/context.js';
import { rateLimit } from '../../src/http/rate-limit.js';
import { SharedWindows } from '../../src/limits/shared-windows.js';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { silentLogger } from '../../src/logger.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('toolgate-windows-');
afterAll(() => dir.remove());

/** One gateway's tool-call route behind its own limiter, counting in `store`'s shared windows. */
function instance(store: SqliteStore, now: () => number) {
  const limiter = rateLimit({ toolCallsPerMinute: 5, authFailuresPerMinute: 0, trustProxy: 0, sharedToolCalls: new SharedWindows({ store, now }) });
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('principal', { id: 'dev_user', role: 'developer', tokenId: 7, anonymous: false } as never);
    await next();
  });
  app.post('/tools/echo/call', limiter.toolCalls, (c) => c.json({ ok: true }));
  app.onError((err, c) => errorResponse(err, c, silentLogger));
  return app;
}

describe('the cluster-wide tool-call limit', () => {
  it('holds across instances sharing the database: 5 a minute between two of them, then 429 with Retry-After until the next minute', async () => {
    const first = SqliteStore.open(join(dir.path, 'windows.db'));
    const second = SqliteStore.open(first.path, { migrate: false });
    try {
      let now = Date.UTC(2026, 10, 23, 12, 0, 10);
      const [a, b] = [instance(first, () => now), instance(second, () => now)];
      const call = (app: Hono<AppEnv>) => app.request('/tools/echo/call', { method: 'POST' });
      const statuses = [];
      for (const app of [a, b, a, b, a, b, a]) statuses.push((await call(app)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      const refused = await call(b);
      expect(await refused.json()).toMatchObject({ error: { code: 'rate_limited' } });
      expect(refused.headers.get('retry-after')).toBe('50');
      now += 50_000;
      expect((await call(b)).status).toBe(200);
    } finally {
      await second.close();
      await first.close();
    }
  });
});
