// The gateway's HTTP API from the page: same origin, the session cookie, JSON both ways. Errors
// come back as values carrying the gateway's own code and message, to be shown as they are.

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export async function call(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'the gateway cannot be reached');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const error = data?.error ?? {};
    throw new ApiError(res.status, error.code ?? `http_${res.status}`, error.message ?? `the gateway answered ${res.status}`, data);
  }
  return data;
}

/** Listeners told when any call finds the session gone (401), so the page shows the sign-in form. */
const signedOutListeners = new Set();
export function onSignedOut(fn) {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

/** `call`, but a 401 also tells the page the session has ended. */
export async function authed(method, path, body) {
  try {
    return await call(method, path, body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) for (const fn of signedOutListeners) fn(err.message);
    throw err;
  }
}

export const api = {
  session: () => call('GET', '/api/session'),
  signIn: (token) => call('POST', '/api/session', { token }),
  signOut: () => call('DELETE', '/api/session'),
  approval: (id) => authed('GET', `/api/approvals/${encodeURIComponent(id)}`),
  decide: (id, verdict, reason, grant) => authed('POST', `/api/approvals/${encodeURIComponent(id)}/${verdict}`, grant ? { reason, grant } : { reason }),
  previewGrant: (id, grant) => authed('POST', `/api/approvals/${encodeURIComponent(id)}/grant-preview`, { grant }),
  grants: (all) => authed('GET', `/api/grants${all ? '?all=true' : ''}`),
  revokeGrant: (id, reason) => authed('POST', `/api/grants/${encodeURIComponent(id)}/revoke`, { reason }),
  history: (filters) => authed('GET', `/api/approvals${query(filters)}`),
  audit: (filters) => authed('GET', `/security/logs/audit${query(filters)}`),
  verifyAudit: () => authed('GET', '/security/logs/audit/verify'),
};

/** `?a=1&b=2` from the filters that are set. */
export function query(filters = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}
