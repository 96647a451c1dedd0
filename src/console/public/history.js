// Decided, expired and cancelled requests, filtered; each links to its request and audit events.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { Sensitivity } from './parts.js';
import { Visible } from './text.js';

const STATUSES = ['approved', 'rejected', 'expired', 'cancelled', 'pending'];

/** The filters as they are in the address (#/history?status=…), so a filtered view can be linked to. */
export function readFilters(search) {
  const p = new URLSearchParams(search);
  return { status: p.get('status') ?? '', tool: p.get('tool') ?? '', requester: p.get('requester') ?? '', since: p.get('since') ?? '' };
}

export function History({ search, can }) {
  const filters = readFilters(search);
  const [form, setForm] = useState(filters);
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [more, setMore] = useState(false);
  const load = async (before) => {
    setError(null);
    try {
      const since = filters.since ? new Date(filters.since).toISOString() : undefined;
      const { approvals } = await api.history({ status: filters.status || 'approved,rejected,expired,cancelled', tool: filters.tool, requester: filters.requester, since, before, limit: 50 });
      setRows((old) => (before && old ? [...old, ...approvals] : approvals));
      setMore(approvals.length === 50);
    } catch (err) {
      setError(err.message);
    }
  };
  useEffect(() => {
    setForm(filters);
    setRows(null);
    load();
  }, [search]);
  const apply = (event) => {
    event.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v) p.set(k, v);
    location.hash = `/history?${p}`;
  };
  const field = (name) => ({ value: form[name], onInput: (e) => setForm({ ...form, [name]: e.currentTarget.value }) });
  return html`<section aria-labelledby="history-title">
    <h2 id="history-title">History</h2>
    <form class="filters" onSubmit=${apply}>
      <label>Verdict <select name="status" value=${form.status} onChange=${(e) => setForm({ ...form, status: e.currentTarget.value })}>
        <option value="">any decided</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select></label>
      <label>Tool <input name="tool" ...${field('tool')} /></label>
      <label>Requester <input name="requester" ...${field('requester')} /></label>
      <label>Since <input name="since" type="datetime-local" ...${field('since')} /></label>
      <button type="submit">Filter</button>
    </form>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${rows === null
      ? html`<p>Loading…</p>`
      : rows.length === 0
        ? html`<p class="empty">No requests match.</p>`
        : html`<div class="table-wrap"><table class="history">
            <thead><tr><th scope="col">Requested</th><th scope="col">Tool</th><th scope="col">Sensitivity</th><th scope="col">Requester</th><th scope="col">Outcome</th><th scope="col">Decided by</th><th scope="col">Audit</th></tr></thead>
            <tbody>${rows.map((a) => html`<tr key=${a.id} data-id=${a.id} data-status=${a.status}>
              <td><time datetime=${a.requestedAt}>${new Date(a.requestedAt).toLocaleString()}</time></td>
              <td><a class="tool" href=${`#/r/${a.id}`}><${Visible} text=${a.tool} /></a><div class="sub mono">${a.shortId}</div></td>
              <td><${Sensitivity} level=${a.sensitivity} /></td>
              <td><${Visible} text=${a.requester.id} /><div class="sub">${a.requester.role}</div></td>
              <td class=${`outcome ${a.status}`}>${a.status}${a.statusReason ? html`<div class="sub"><${Visible} text=${a.statusReason} /></div>` : null}</td>
              <td>${a.decisions.map((d) => html`<div><strong><${Visible} text=${d.approver} /></strong> ${d.verdict}: “<${Visible} text=${d.reason} />”</div>`)}</td>
              <td>${can.audit ? html`<a href=${`#/audit?request=${a.id}`}>events</a>` : html`<span class="sub">admins</span>`}</td>
            </tr>`)}</tbody>
          </table></div>`}
    ${more ? html`<button type="button" onClick=${() => load(rows.at(-1).requestedAt)}>Older</button>` : null}
  </section>`;
}
