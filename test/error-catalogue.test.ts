import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CODES, errorCatalogue } from '../src/core/errors.js';
import { errorResponse } from '../src/http/error-response.js';
import { silentLogger } from '../src/logger.js';
import { wsErrorOf } from '../src/ws/errors.js';

describe('the error catalogue', () => {
  it('is documented in docs/api.md: every code with its status', () => {
    const doc = readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8');
    const rows = new Map([...doc.matchAll(/^\| `([a-z_]+)` \| \(?(\d{3})\)? \|/gm)].map((m) => [m[1], Number(m[2])]));
    for (const code of ERROR_CODES) expect([code, rows.get(code)]).toEqual([code, errorCatalogue[code].status]);
    expect([...rows.keys()].sort()).toEqual([...ERROR_CODES].sort());
  });

  it('answers HTTP with the status, the extra fields beside `error` and the headers its code needs', async () => {
    const app = new Hono();
    app.get('/limited', () => Promise.reject(new AppError('rate_limited', 'slow down', { retryAfter: 7 })));
    app.get('/capped', () => Promise.reject(new AppError('too_many_pending', 'full', { limit: 'global', max_pending: 3 })));
    app.get('/anon', () => Promise.reject(new AppError('unauthorized', 'who are you')));
    app.get('/bug', () => Promise.reject(new Error('secret internals')));
    app.onError((err, c) => errorResponse(err, c, silentLogger));

    const limited = await app.request('/limited');
    expect([limited.status, limited.headers.get('retry-after'), await limited.json()]).toEqual([429, '7', { error: { code: 'rate_limited', message: 'slow down' }, retryAfter: 7 }]);
    const capped = await app.request('/capped');
    expect([capped.status, capped.headers.get('retry-after'), await capped.json()]).toEqual([
      429,
      null,
      { error: { code: 'too_many_pending', message: 'full' }, limit: 'global', max_pending: 3 },
    ]);
    const anon = await app.request('/anon');
    expect([anon.status, anon.headers.get('www-authenticate')]).toEqual([401, 'Bearer']);
    const bug = await app.request('/bug');
    expect([bug.status, await bug.json()]).toEqual([500, { error: { code: 'internal', message: 'internal error' } }]);
  });

  it('sends the same codes on the WebSocket, with the one documented wire code (permission_denied as forbidden)', () => {
    expect(wsErrorOf('r1', new AppError('not_pending', 'already approved', { status: 'approved' }))).toEqual({ type: 'error', ref: 'r1', code: 'not_pending', message: 'already approved' });
    expect(wsErrorOf(3, new AppError('permission_denied', 'role "developer" lacks approval.manage'))).toMatchObject({ code: 'forbidden' });
    const renamed = ERROR_CODES.filter((code) => wsErrorOf(undefined, new AppError(code as 'internal', '')).code !== code);
    expect(renamed).toEqual(['permission_denied']);
  });
});
