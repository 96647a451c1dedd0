// The toolgate web console: sign in, the live queue, one request, decide.
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, onSignedOut } from './api.js';
import { html } from './html.js';
import { connectLive } from './live.js';
import { RequestView } from './request-view.js';
import { argumentSummary, safeText, Visible } from './text.js';
import { duration, quorumOf, Sensitivity, settledLine } from './parts.js';

function useNow(everyMs = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

function useRoute() {
  const read = () => location.hash.replace(/^#/, '') || '/';
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export const go = (path) => {
  location.hash = path;
};

function SignIn({ onSignedIn, notice }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { session } = await api.signIn(token.trim());
      setToken('');
      onSignedIn(session);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>toolgate console</h1>
    ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
    <form onSubmit=${submit}>
      <label for="token">Approver token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
      <p class="hint">Your API token (from <code>toolgate users add</code> or the first start) is exchanged for a session; the page never keeps it.</p>
      <button type="submit" disabled=${busy}>Sign in</button>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    </form>
  </main>`;
}

function Banner({ connection }) {
  if (connection.connection === 'connected') return html`<p class="banner ok" role="status" data-connection="connected">● Connected: live</p>`;
  const text = connection.connection === 'connecting' ? 'Connecting…' : `Reconnecting… (attempt ${connection.attempt}); the queue will resync`;
  return html`<p class="banner warn" role="status" data-connection=${connection.connection}>◌ ${text}</p>`;
}

function QueueRow({ approval, now, selected, onOpen, checked, onCheck }) {
  const ageMs = now - Date.parse(approval.requestedAt);
  const leftMs = Date.parse(approval.expiresAt) - now;
  const { approvals, required } = quorumOf(approval);
  return html`<tr class=${selected ? 'selected' : ''} data-id=${approval.id} aria-selected=${selected ? 'true' : 'false'} onClick=${() => onOpen(approval.id)}>
    <td class="pick" onClick=${(e) => e.stopPropagation()}>
      <input type="checkbox" aria-label=${`select ${safeText(approval.tool)} ${approval.shortId}`} checked=${checked} onChange=${(e) => onCheck(approval.id, e.currentTarget.checked)} />
    </td>
    <td><a class="tool" href=${`#/r/${approval.id}`}><${Visible} text=${approval.tool} /></a><div class="sub mono">${approval.shortId}</div></td>
    <td><${Sensitivity} level=${approval.sensitivity} /></td>
    <td><${Visible} text=${approval.requester.id} /><div class="sub">${approval.requester.role}</div></td>
    <td><span title=${approval.requestedAt}>${duration(ageMs)} ago</span><div class=${`sub countdown ${leftMs < 60_000 ? 'soon' : ''}`}>${leftMs > 0 ? `${duration(leftMs)} left` : 'expiring'}</div></td>
    <td class="quorum">${approvals} of ${required}</td>
    <td class="args mono">${argumentSummary(approval.arguments)}</td>
  </tr>`;
}

function Queue({ pending, now, selected, setSelected, filter, setFilter, filterRef, checked, setChecked, can }) {
  const [batchReason, setBatchReason] = useState('');
  const [batchResult, setBatchResult] = useState(null);
  const picked = pending.filter((a) => checked.has(a.id));
  const rejectPicked = async (event) => {
    event.preventDefault();
    const outcomes = [];
    for (const a of picked) {
      try {
        await api.decide(a.id, 'reject', batchReason);
        outcomes.push(`${a.shortId}: rejected`);
      } catch (err) {
        outcomes.push(`${a.shortId}: ${err.message}`);
      }
    }
    setChecked(new Set());
    setBatchReason('');
    setBatchResult(outcomes.join('; '));
  };
  return html`<section aria-labelledby="queue-title">
    <div class="queue-head">
      <h2 id="queue-title">Pending <span class="count">${pending.length}</span></h2>
      <label class="filter">Filter <input ref=${filterRef} type="search" placeholder="tool or requester (/)" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} /></label>
    </div>
    ${pending.length === 0
      ? html`<p class="empty">Nothing waits for a decision.</p>`
      : html`<div class="table-wrap"><table class="queue">
          <thead><tr><th scope="col"><span class="sr">select</span></th><th scope="col">Tool</th><th scope="col">Sensitivity</th><th scope="col">Requester</th><th scope="col">Age / expires</th><th scope="col">Approvals</th><th scope="col">Arguments</th></tr></thead>
          <tbody>${pending.map(
            (a, i) => html`<${QueueRow} key=${a.id} approval=${a} now=${now} selected=${i === selected} checked=${checked.has(a.id)}
              onCheck=${(id, on) => setChecked((s) => { const n = new Set(s); on ? n.add(id) : n.delete(id); return n; })}
              onOpen=${(id) => { setSelected(i); go(`/r/${id}`); }} />`,
          )}</tbody>
        </table></div>`}
    ${can.decide && picked.length > 0
      ? html`<form class="batch" onSubmit=${rejectPicked}>
          <label for="batch-reason">Reject ${picked.length} selected with one reason</label>
          <input id="batch-reason" required maxlength="1000" value=${batchReason} onInput=${(e) => setBatchReason(e.currentTarget.value)} />
          <button type="submit" class="reject">Reject ${picked.length}</button>
        </form>`
      : null}
    ${batchResult ? html`<p class="notice" role="status">${batchResult}</p>` : null}
  </section>`;
}

function Settled({ settled }) {
  if (settled.length === 0) return null;
  return html`<section class="settled" aria-labelledby="settled-title">
    <h2 id="settled-title">Recently settled</h2>
    <ul aria-live="polite">${settled.map((s) => html`<li key=${s.approval.id + s.at} data-id=${s.approval.id} data-status=${s.approval.status}>${settledLine(s.approval)}</li>`)}</ul>
  </section>`;
}

function Console({ session, onSignedOut }) {
  const [pending, setPending] = useState([]);
  const [settled, setSettled] = useState([]);
  const [connection, setConnection] = useState({ connection: 'connecting', attempt: 0 });
  const [selected, setSelected] = useState(0);
  const [filter, setFilter] = useState('');
  const [checked, setChecked] = useState(new Set());
  const filterRef = useRef(null);
  const route = useRoute();
  const now = useNow();

  useEffect(() => {
    const byOldest = (list) => [...list].sort((a, b) => Date.parse(a.requestedAt) - Date.parse(b.requestedAt));
    const live = connectLive({
      onState: setConnection,
      onHello: (frame) => setPending(byOldest(frame.pending)),
      onFrame: (frame) => {
        if (frame.type === 'pending') setPending(byOldest(frame.pending));
        else if (frame.type === 'approval.requested' || frame.type === 'approval.updated') {
          setPending((list) => byOldest([...list.filter((a) => a.id !== frame.approval.id), frame.approval]));
        } else if (frame.type === 'approval.resolved') {
          setPending((list) => list.filter((a) => a.id !== frame.approval.id));
          setSettled((list) => [{ approval: frame.approval, at: Date.now() }, ...list].slice(0, 20));
        }
      },
      onEnded: (reason) => onSignedOut(`Signed out: ${reason}`),
    });
    return () => live.close();
  }, []);

  const visible = useMemo(() => {
    const f = filter.trim().toLowerCase();
    if (!f) return pending;
    return pending.filter((a) => a.tool.toLowerCase().includes(f) || a.requester.id.toLowerCase().includes(f));
  }, [pending, filter]);

  useEffect(() => {
    document.title = pending.length > 0 ? `(${pending.length}) toolgate console` : 'toolgate console';
  }, [pending.length]);

  const signOut = async () => {
    try {
      await api.signOut();
    } finally {
      onSignedOut('Signed out.');
    }
  };

  const requestId = route.startsWith('/r/') ? route.slice(3) : null;
  return html`<div class="shell">
    <header>
      <a class="brand" href="#/">toolgate</a>
      <nav aria-label="main"><a href="#/">Queue</a></nav>
      <span class="who">Signed in as <strong><${Visible} text=${session.user.id} /></strong> (${session.user.role})</span>
      <button type="button" class="signout" onClick=${signOut}>Sign out</button>
    </header>
    <${Banner} connection=${connection} />
    <main>
      ${requestId
        ? html`<${RequestView} id=${requestId} now=${now} can=${session.can} live=${pending.find((a) => a.id === requestId)} settled=${settled.find((s) => s.approval.id === requestId)} />`
        : html`<${Queue} pending=${visible} now=${now} selected=${Math.min(selected, Math.max(visible.length - 1, 0))} setSelected=${setSelected}
            filter=${filter} setFilter=${setFilter} filterRef=${filterRef} checked=${checked} setChecked=${setChecked} can=${session.can} />`}
      <${Settled} settled=${settled} />
    </main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [notice, setNotice] = useState(null);
  useEffect(() => {
    api.session().then(
      (r) => setSession(r.session),
      () => setSession(null),
    );
    return onSignedOut((message) => {
      setNotice(`Your session ended: ${message}`);
      setSession(null);
    });
  }, []);
  const signedOut = useCallback((message) => {
    setNotice(message);
    setSession(null);
  }, []);
  if (session === undefined) return html`<p class="boot">Loading…</p>`;
  if (session === null) return html`<${SignIn} notice=${notice} onSignedIn=${(s) => { setNotice(null); setSession(s); }} />`;
  return html`<${Console} session=${session} onSignedOut=${signedOut} />`;
}

render(html`<${App} />`, document.getElementById('app'));
