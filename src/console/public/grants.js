// Standing approvals: the live ones (or all, with `?all=true`), what each covers, and revoking one.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { duration, Sensitivity } from './parts.js';
import { argumentSummary, Visible } from './text.js';

function Revoke({ grant, onRevoked }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onRevoked((await api.revokeGrant(grant.id, reason.trim())).grant);
    } catch (err) {
      setError(`${err.code ?? 'error'}: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="revoke" onSubmit=${submit}>
    <input required maxlength="1000" aria-label=${`reason to revoke ${grant.id.slice(0, 8)}`} placeholder="reason" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} />
    <button type="submit" class="reject" disabled=${busy}>Revoke</button>
    ${error ? html`<div class="error" role="alert"><${Visible} text=${error} /></div>` : null}
  </form>`;
}

export function Grants({ search, can, now }) {
  const all = new URLSearchParams(search).get('all') === 'true';
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const load = () =>
    api.grants(all).then(
      (r) => {
        setError(null);
        setRows(r.grants);
      },
      (err) => setError(err.message),
    );
  useEffect(() => {
    setRows(null);
    load();
  }, [all]);
  return html`<section aria-labelledby="grants-title">
    <h2 id="grants-title">Standing approvals</h2>
    <p class="hint">Calls these allow run without asking anyone. A standing approval is made by approving a request with "Also allow this call again"; it ends at its time, after its last call, when revoked, or when its requester or an approver is disabled.</p>
    <div class="filters">
      <label><input type="checkbox" checked=${all} onChange=${(e) => (location.hash = e.currentTarget.checked ? '/grants?all=true' : '/grants')} /> Include ended ones (expired, used up, revoked)</label>
      <button type="button" onClick=${load}>Refresh</button>
    </div>
    ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${rows === null
      ? html`<p>Loading…</p>`
      : rows.length === 0
        ? html`<p class="empty">${all ? 'No standing approvals.' : 'No live standing approvals.'}</p>`
        : html`<div class="table-wrap"><table class="grants">
            <thead><tr><th scope="col">Grant</th><th scope="col">Tool</th><th scope="col">Requester</th><th scope="col">Covers</th><th scope="col">Left</th><th scope="col">Approved by</th>${can.decide ? html`<th scope="col">Revoke</th>` : null}</tr></thead>
            <tbody>${rows.map((g) => html`<tr key=${g.id} data-id=${g.id} data-state=${g.state}>
              <td><span class="mono">${g.id.slice(0, 8)}</span><div class=${`state ${g.state}`}>${g.state.replace('_', ' ')}</div><div class="sub"><a href=${`#/r/${g.requestId}`}>from request ${g.requestId.slice(0, 8)}</a></div></td>
              <td><span class="tool"><${Visible} text=${g.tool} /></span> <${Sensitivity} level=${g.sensitivity} /></td>
              <td><${Visible} text=${g.requester} /></td>
              <td class="covers"><div><${Visible} text=${g.scopeText} /></div>${g.scope === 'any' ? null : html`<div class="sub mono">${argumentSummary(g.arguments)}</div>`}</td>
              <td>${g.state === 'active' ? `${duration(Date.parse(g.expiresAt) - now)}, ` : ''}${g.usesLeft ?? 'unlimited'} of ${g.maxUses ?? 'unlimited'} calls<div class="sub">${g.uses} used; until <time datetime=${g.expiresAt}>${new Date(g.expiresAt).toLocaleString()}</time></div>
                ${g.revokedAt ? html`<div class="sub">revoked by <${Visible} text=${g.revokedBy} />: “<${Visible} text=${g.revokeReason} />”</div>` : null}</td>
              <td>${g.approvers.map((a) => html`<div><${Visible} text=${a} /></div>`)}</td>
              ${can.decide
                ? html`<td>${g.state === 'active'
                    ? html`<${Revoke} grant=${g} onRevoked=${(done) => {
                        setNotice(`Standing approval ${done.id.slice(0, 8)} revoked: no call it covered runs from now on.`);
                        load();
                      }} />`
                    : null}</td>`
                : null}
            </tr>`)}</tbody>
          </table></div>`}
  </section>`;
}
