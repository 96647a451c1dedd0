// The toolgate web console: sign in, the live queue, one request, decide.
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, onSignedOut } from './api.js';
import { html } from './html.js';
import { connectLive } from './live.js';
import { RequestView } from './request-view.js';
import { argumentSummary, safeText, Visible } from './text.js';
import { duration, quorumOf, Sensitivity, settledLine } from './parts.js';
import { History } from './history.js';
import { Audit } from './audit.js';
import { Grants } from './grants.js';
import { announce, enableNotifications, loadAttention, saveAttention } from './attention.js';

function useNow(everyMs = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

/** The route from the address's fragment: `#/r/<id>`, `#/history?…`, `#/grants?…`, `#/audit?…`, or the queue. */
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
      <label class="filter">Filter <input ref=${filterRef} type="search" placeholder="tool or requester (/)" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)}
        onKeyDown=${(e) => { if (e.key === 'Escape') { e.stopPropagation(); setFilter(''); e.currentTarget.blur(); } }} /></label>
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

const KEYS = [
  ['j / ↓', 'next request'],
  ['k / ↑', 'previous request'],
  ['Enter / o', 'open the selected request'],
  ['a', 'approve: open it with the reason box focused; Ctrl+Enter decides'],
  ['r', 'reject: the same'],
  ['x', 'select for batch reject'],
  ['/', 'filter the queue'],
  ['Esc', 'back to the queue'],
  ['?', 'show or hide these keys'],
];

function KeyHelp({ onClose }) {
  return html`<div class="keyhelp" role="dialog" aria-modal="false" aria-labelledby="keys-title">
    <h2 id="keys-title">Keyboard</h2>
    <dl>${KEYS.map(([k, what]) => html`<dt><kbd>${k}</kbd></dt><dd>${what}</dd>`)}</dl>
    <button type="button" onClick=${onClose}>Close</button>
  </div>`;
}

function Attention({ settings, setSettings }) {
  const toggle = async (name, on) => {
    if (name === 'notify' && on && !(await enableNotifications())) on = false;
    const next = { ...settings, [name]: on };
    saveAttention(next);
    setSettings(next);
  };
  return html`<span class="attention">
    <label><input type="checkbox" checked=${settings.notify} onChange=${(e) => toggle('notify', e.currentTarget.checked)} /> Notify</label>
    <label><input type="checkbox" checked=${settings.sound} onChange=${(e) => toggle('sound', e.currentTarget.checked)} /> Sound</label>
  </span>`;
}

const typing = (el) => el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);

function Console({ session, onSignedOut }) {
  const [pending, setPending] = useState([]);
  const [settled, setSettled] = useState([]);
  const [connection, setConnection] = useState({ connection: 'connecting', attempt: 0 });
  const [selected, setSelected] = useState(0);
  const [filter, setFilter] = useState('');
  const [checked, setChecked] = useState(new Set());
  const [verdict, setVerdict] = useState(null);
  const [help, setHelp] = useState(false);
  const [attention, setAttention] = useState(loadAttention);
  const [announced, setAnnounced] = useState(null);
  const attentionRef = useRef(attention);
  attentionRef.current = attention;
  const filterRef = useRef(null);
  const route = useRoute();
  const now = useNow();

  useEffect(() => {
    const byOldest = (list) => [...list].sort((a, b) => Date.parse(a.requestedAt) - Date.parse(b.requestedAt) || (a.id < b.id ? -1 : 1));
    const live = connectLive({
      onState: setConnection,
      onHello: (frame) => setPending(byOldest(frame.pending)),
      onFrame: (frame) => {
        if (frame.type === 'pending') setPending(byOldest(frame.pending));
        else if (frame.type === 'approval.requested' || frame.type === 'approval.updated') {
          setPending((list) => byOldest([...list.filter((a) => a.id !== frame.approval.id), frame.approval]));
          if (frame.type === 'approval.requested') {
            const done = announce(frame.approval, attentionRef.current);
            if (done.length > 0) setAnnounced(`${done.join(' and ')} for ${safeText(frame.approval.tool)}`);
          }
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
  const current = Math.min(selected, Math.max(visible.length - 1, 0));

  useEffect(() => {
    document.title = pending.length > 0 ? `(${pending.length}) toolgate console` : 'toolgate console';
  }, [pending.length]);

  const [path, search] = route.split('?');
  const requestId = path.startsWith('/r/') ? path.slice(3) : null;

  // The key handler is registered once and reads the newest state here, so that keys pressed
  // faster than the page re-renders still act on what the approver sees.
  const keyState = useRef(null);
  keyState.current = { path, requestId, visible, current, help, canDecide: session.can.decide };
  useEffect(() => {
    const onKey = (e) => {
      const { path, requestId, visible, current, help, canDecide } = keyState.current;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'Escape') {
        if (help) {
          keyState.current.help = false;
          return setHelp(false);
        }
        if (typing(document.activeElement)) return document.activeElement.blur();
        if (path !== '/') {
          setVerdict(null);
          go('/');
        }
        return;
      }
      if (typing(document.activeElement)) return;
      const onQueue = path === '/';
      const target = requestId ?? visible[current]?.id;
      switch (e.key) {
        case 'j':
        case 'ArrowDown':
          if (!onQueue) return;
          keyState.current.current = Math.min(current + 1, visible.length - 1);
          setSelected(keyState.current.current);
          break;
        case 'k':
        case 'ArrowUp':
          if (!onQueue) return;
          keyState.current.current = Math.max(current - 1, 0);
          setSelected(keyState.current.current);
          break;
        case 'Enter':
        case 'o':
          // Enter on a focused link or button is that element's; only on the page itself does it open the selection.
          if (e.key === 'Enter' && document.activeElement && document.activeElement !== document.body) return;
          if (!onQueue || !target) return;
          setVerdict(null);
          go(`/r/${target}`);
          break;
        case 'a':
        case 'r':
          if (!target || !canDecide) return;
          // Tied to the request it was given for: opening another one by mouse starts without a verdict.
          setVerdict({ id: target, verdict: e.key === 'a' ? 'approve' : 'reject' });
          if (onQueue) go(`/r/${target}`);
          break;
        case 'x':
          if (!onQueue || !target) return;
          setChecked((s) => {
            const n = new Set(s);
            n.has(target) ? n.delete(target) : n.add(target);
            return n;
          });
          break;
        case '/':
          if (!onQueue) go('/');
          setTimeout(() => filterRef.current?.focus(), 0);
          break;
        case '?':
          keyState.current.help = !help;
          setHelp(!help);
          break;
        default:
          return;
      }
      e.preventDefault();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  // Keep the selected row in view as j/k move through a long queue.
  useEffect(() => {
    document.querySelector('table.queue tr.selected')?.scrollIntoView({ block: 'nearest' });
  }, [current]);

  const signOut = async () => {
    try {
      await api.signOut();
    } finally {
      onSignedOut('Signed out.');
    }
  };

  let view;
  if (requestId) {
    view = html`<${RequestView} id=${requestId} now=${now} can=${session.can} grantCaps=${session.grantCaps} verdict=${verdict?.id === requestId ? verdict.verdict : null} live=${pending.find((a) => a.id === requestId)}
      settled=${settled.find((s) => s.approval.id === requestId)} onDecidedByKeyboard=${() => { setVerdict(null); go('/'); }} />`;
  } else if (path === '/history') {
    view = html`<${History} search=${search ?? ''} can=${session.can} />`;
  } else if (path === '/grants') {
    view = html`<${Grants} search=${search ?? ''} can=${session.can} now=${now} />`;
  } else if (path === '/audit' && session.can.audit) {
    view = html`<${Audit} search=${search ?? ''} />`;
  } else {
    view = html`<${Queue} pending=${visible} now=${now} selected=${current} setSelected=${setSelected}
      filter=${filter} setFilter=${setFilter} filterRef=${filterRef} checked=${checked} setChecked=${setChecked} can=${session.can} />`;
  }
  const here = (p) => (path === p ? 'page' : undefined);
  return html`<div class="shell">
    <header>
      <a class="brand" href="#/">toolgate</a>
      <nav aria-label="main">
        <a href="#/" aria-current=${here('/')}>Queue (${pending.length})</a>
        <a href="#/history" aria-current=${here('/history')}>History</a>
        <a href="#/grants" aria-current=${here('/grants')}>Standing approvals</a>
        ${session.can.audit ? html`<a href="#/audit" aria-current=${here('/audit')}>Audit log</a>` : null}
      </nav>
      <${Attention} settings=${attention} setSettings=${setAttention} />
      <button type="button" class="keys" onClick=${() => setHelp((h) => !h)} aria-expanded=${help ? 'true' : 'false'}>Keys (?)</button>
      <span class="who">Signed in as <strong><${Visible} text=${session.user.id} /></strong> (${session.user.role})</span>
      <button type="button" class="signout" onClick=${signOut}>Sign out</button>
    </header>
    <${Banner} connection=${connection} />
    ${help ? html`<${KeyHelp} onClose=${() => setHelp(false)} />` : null}
    <p class="sr" aria-live="polite">${announced ?? ''}</p>
    <main>
      ${view}
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
