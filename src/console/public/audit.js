// The audit log for admins, with the result of verifying its hash chain and signed checkpoints.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { argumentSummary, Visible } from './text.js';

function Verification() {
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const run = () => {
    setResult(null);
    setError(null);
    api.verifyAudit().then(setResult, (err) => setError(err.message));
  };
  useEffect(run, []);
  if (error) return html`<p class="error" role="alert">Verification failed to run: ${error}</p>`;
  if (!result) return html`<p class="verify" role="status">Verifying the chain…</p>`;
  const { chain, checkpoints } = result;
  return html`<div class=${`verify ${result.ok ? 'ok' : 'bad'}`} role="status" data-ok=${String(result.ok)}>
    <strong>${result.ok ? '✔ The audit log verifies.' : '✘ The audit log does NOT verify.'}</strong>
    <div>Hash chain: ${chain.ok ? `${chain.checked} events in ${chain.chains} ${chain.chains === 1 ? 'chain' : 'chains'} recomputed from ${chain.anchorSeq === 0 ? 'the start' : `the pruning anchors (through event ${chain.anchorSeq})`}, unbroken.` : `broken at event ${chain.brokenAt.seq}: ${chain.brokenAt.reason}.`}</div>
    <div>Signed checkpoints: ${checkpoints.ok ? 'valid' : 'problems'}; ${checkpoints.count} checkpoints${checkpoints.latestSeq !== null ? `, the newest at event ${checkpoints.latestSeq}` : ''}; ${checkpoints.uncovered} events not yet under a signature.</div>
    ${[...checkpoints.problems, ...checkpoints.notes].map((p) => html`<div class="sub">${p}</div>`)}
    <div class="sub">Verified ${new Date(result.verifiedAt).toLocaleString()} <button type="button" onClick=${run}>Verify again</button></div>
  </div>`;
}

export function Audit({ search }) {
  const p = new URLSearchParams(search);
  const filters = { user: p.get('user') ?? '', action: p.get('action') ?? '', tool: p.get('tool') ?? '', request: p.get('request') ?? '' };
  const [form, setForm] = useState(filters);
  const [events, setEvents] = useState(null);
  const [error, setError] = useState(null);
  const load = async (before) => {
    try {
      const page = await api.audit({ ...filters, before, limit: 100 });
      setEvents((old) => (before && old ? [...old, ...page.events] : page.events));
    } catch (err) {
      setError(err.message);
    }
  };
  useEffect(() => {
    setForm(filters);
    setEvents(null);
    setError(null);
    load();
  }, [search]);
  const apply = (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v) q.set(k, v);
    location.hash = `/audit?${q}`;
  };
  const field = (name) => ({ value: form[name], onInput: (e) => setForm({ ...form, [name]: e.currentTarget.value }) });
  return html`<section aria-labelledby="audit-title">
    <h2 id="audit-title">Audit log</h2>
    <${Verification} />
    <form class="filters" onSubmit=${apply}>
      <label>Actor <input name="user" ...${field('user')} /></label>
      <label>Action <input name="action" ...${field('action')} /></label>
      <label>Tool <input name="tool" ...${field('tool')} /></label>
      <label>Request id <input name="request" ...${field('request')} /></label>
      <button type="submit">Filter</button>
    </form>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${events === null
      ? html`<p>Loading…</p>`
      : events.length === 0
        ? html`<p class="empty">No events match.</p>`
        : html`<div class="table-wrap"><table class="audit">
            <thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Tool</th><th scope="col">Request</th><th scope="col">Status</th><th scope="col">Details</th></tr></thead>
            <tbody>${events.map((e) => html`<tr key=${e.seq} data-seq=${e.seq}>
              <td class="mono">${e.seq}</td>
              <td><time datetime=${e.at}>${new Date(e.at).toLocaleString()}</time></td>
              <td><${Visible} text=${e.actor} /></td>
              <td class="mono">${e.action}</td>
              <td>${e.tool ? html`<${Visible} text=${e.tool} />` : null}</td>
              <td>${e.requestId ? html`<a class="mono" href=${`#/r/${e.requestId}`}>${e.requestId.slice(0, 8)}</a>` : null}</td>
              <td>${e.status ?? ''}</td>
              <td class="mono details">${argumentSummary(e.details, 240)}</td>
            </tr>`)}</tbody>
          </table></div>`}
    ${events && events.length > 0 && events.length % 100 === 0 ? html`<button type="button" onClick=${() => load(events.at(-1).seq)}>Older</button>` : null}
  </section>`;
}
