// One request: everything about it, and the decision form.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from './api.js';
import { html } from './html.js';
import { JsonView } from './json-view.js';
import { duration, quorumOf, Sensitivity, settledLine } from './parts.js';
import { Visible } from './text.js';
import { GrantChoice, GrantMade, GrantSummary, grantRequestOf, ineligible, NO_GRANT } from './grant-form.js';

const PRESETS = {
  approve: ['Expected as part of the current task', 'Checked the arguments; safe to run'],
  reject: ['Not expected: nobody asked for this', 'Arguments look wrong or unsafe', 'Too broad; ask for something narrower'],
};

/** What a refusal means for the approver, in their words; the gateway's own message follows it. */
const REFUSALS = {
  self_approval: 'You cannot decide your own request (four-eyes rule).',
  already_decided: 'You have already voted on this request; it needs another approver.',
  not_pending: 'This request is no longer pending: someone or something settled it first.',
  permission_denied: 'Your role may view requests but not decide them.',
  forbidden_origin: 'The gateway refused a call that did not come from its own page.',
  grant_not_allowed: 'The gateway will not grant this standing approval; nothing was decided.',
  grant_incomplete: 'The standing approval is not complete.',
  validation_failed: 'The gateway refused what was asked; nothing was decided.',
};

export function DecisionForm({ approval, initialVerdict, onDecided, grantCaps, now }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [choice, setChoice] = useState(NO_GRANT);
  // A standing approval to confirm: the exact `grant` that will be sent, and the gateway's reading of it.
  const [review, setReview] = useState(null);
  const reasonRef = useRef(null);
  const confirmRef = useRef(null);
  useEffect(() => {
    if (initialVerdict) reasonRef.current?.focus();
  }, [initialVerdict]);
  useEffect(() => {
    if (review) confirmRef.current?.focus();
  }, [review]);
  const refused = (err) => setError(err instanceof ApiError ? { code: err.code, message: err.message } : { code: 'error', message: String(err) });
  const send = async (verdict, grant) => {
    setBusy(true);
    try {
      const answer = await api.decide(approval.id, verdict, reason.trim(), grant);
      setReason('');
      setReview(null);
      setChoice(NO_GRANT);
      onDecided(answer.approval, verdict, grant ? { asked: true, made: answer.grant } : null);
    } catch (err) {
      refused(err);
    } finally {
      setBusy(false);
    }
  };
  const decide = async (verdict) => {
    setError(null);
    if (reason.trim() === '') {
      setError({ code: 'reason_required', message: 'A reason is required: write one or pick a preset.' });
      reasonRef.current?.focus();
      return;
    }
    if (verdict === 'approve' && choice.on && !ineligible(approval, grantCaps)) {
      // A standing approval is confirmed after reading what the gateway says it will cover.
      const asked = grantRequestOf(choice);
      if (asked.error) return setError({ code: 'grant_incomplete', message: asked.error });
      setBusy(true);
      try {
        const { preview } = await api.previewGrant(approval.id, asked.grant);
        setReview({ grant: asked.grant, preview });
      } catch (err) {
        refused(err);
      } finally {
        setBusy(false);
      }
      return;
    }
    await send(verdict, undefined);
  };
  const granting = choice.on && !ineligible(approval, grantCaps);
  return html`<form class="decide" data-verdict=${initialVerdict ?? ''} onSubmit=${(e) => { e.preventDefault(); if (initialVerdict) decide(initialVerdict); }}>
    <h3>Decide${initialVerdict ? html` <span class=${`verdict ${initialVerdict}`}>(${initialVerdict === 'approve' ? 'approving' : 'rejecting'})</span>` : null}</h3>
    <label for="reason">Reason (required; recorded in the audit log and shown to the requester)</label>
    <textarea id="reason" ref=${reasonRef} maxlength="1000" rows="3" required value=${reason} onInput=${(e) => setReason(e.currentTarget.value)}
      onKeyDown=${(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && initialVerdict) { e.preventDefault(); decide(initialVerdict); } }}></textarea>
    <p class="hint">${initialVerdict ? `Ctrl+Enter ${initialVerdict === 'approve' ? 'approves' : 'rejects'}; Esc goes back.` : 'Choose with the buttons, or press a (approve) or r (reject) to decide with Ctrl+Enter.'}</p>
    <div class="presets" role="group" aria-label="preset reasons">
      ${[...PRESETS.approve, ...PRESETS.reject].map((p) => html`<button type="button" class="preset" onClick=${() => { setReason(p); reasonRef.current?.focus(); }}>${p}</button>`)}
    </div>
    <${GrantChoice} approval=${approval} caps=${grantCaps} choice=${choice} setChoice=${(c) => { setChoice(c); setError(null); }} disabled=${busy || !!review} />
    ${review
      ? html`<section class="grant-review" aria-labelledby="grant-review-title">
          <h4 id="grant-review-title">Confirm the standing approval</h4>
          <${GrantSummary} preview=${review.preview} grant=${review.grant} now=${now} />
          <div class="actions">
            <button type="button" class="approve" ref=${confirmRef} disabled=${busy} onClick=${() => send('approve', review.grant)}>Confirm: approve and allow again</button>
            <button type="button" disabled=${busy} onClick=${() => setReview(null)}>Back</button>
          </div>
        </section>`
      : html`<div class="actions">
          <button type="button" class="approve" disabled=${busy} onClick=${() => decide('approve')}>${granting ? 'Approve and allow again…' : 'Approve'}</button>
          <button type="button" class="reject" disabled=${busy} onClick=${() => decide('reject')}>Reject</button>
        </div>`}
    ${error
      ? html`<div class="error" role="alert" data-code=${error.code}><strong>${REFUSALS[error.code] ?? 'The gateway refused the decision.'}</strong> <span class="detail">${error.code}: <${Visible} text=${error.message} /></span></div>`
      : null}
  </form>`;
}

/** What became of the standing approval asked for with an approval, as the gateway answered. */
function grantOutcome(after, grant) {
  if (grant.made) return html`<${GrantMade} grant=${grant.made} />`;
  if (after.status === 'pending') return `Your standing approval is recorded with your vote: it takes effect only when the quorum of ${after.requiredApprovals} is reached, and only if every approval that counts asks for one.`;
  return 'No standing approval was made: an approval that counted did not ask for one.';
}

function Decisions({ approval }) {
  if (approval.decisions.length === 0) return html`<p class="sub">No votes yet.</p>`;
  return html`<ol class="decisions">${approval.decisions.map(
    (d) => html`<li class=${d.verdict}>
      <strong>${d.verdict === 'approve' ? 'Approved' : 'Rejected'}</strong> by <${Visible} text=${d.approver} /> at <time datetime=${d.at}>${new Date(d.at).toLocaleString()}</time>
      ${d.withdrawn ? html` <em>(no longer counts: the approver was disabled or demoted)</em>` : null}
      <div class="reason">“<${Visible} text=${d.reason} multiline=${true} />”</div>
    </li>`,
  )}</ol>`;
}

function RecentOfRequester({ approval }) {
  const [rows, setRows] = useState(null);
  useEffect(() => {
    api.history({ requester: approval.requester.id, limit: 8 }).then(
      (r) => setRows(r.approvals.filter((a) => a.id !== approval.id).slice(0, 6)),
      () => setRows([]),
    );
  }, [approval.id]);
  if (rows === null) return html`<p class="sub">Loading…</p>`;
  if (rows.length === 0) return html`<p class="sub">No other requests from this requester.</p>`;
  return html`<ul class="recent">${rows.map(
    (a) => html`<li key=${a.id}><a href=${`#/r/${a.id}`}><${Visible} text=${a.tool} /></a>${' '}<span class="sub mono">${a.shortId}</span>${' '}<span class=${`outcome ${a.status}`}>${a.status}</span>${' '}<time class="sub" datetime=${a.requestedAt}>${new Date(a.requestedAt).toLocaleString()}</time></li>`,
  )}</ul>`;
}

export function RequestView({ id, now, can, grantCaps, live, settled, verdict, onDecidedByKeyboard }) {
  const [approval, setApproval] = useState(null);
  const [error, setError] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const load = () =>
    api.approval(id).then(
      (r) => setApproval(r.approval),
      (err) => setError(err.message),
    );
  useEffect(() => {
    setApproval(null);
    setError(null);
    setOutcome(null);
    load();
  }, [id]);
  // A push about this request (a vote, a settlement elsewhere) reloads it.
  useEffect(() => {
    if (approval && (live?.decisions.length !== approval.decisions.length || (settled && approval.status === 'pending'))) load();
  }, [live?.decisions.length, settled?.approval.status]);

  if (error) return html`<section><p class="error" role="alert">${error}</p><a href="#/">Back to the queue</a></section>`;
  if (!approval) return html`<section><p>Loading the request…</p></section>`;
  const { approvals, required } = quorumOf(approval);
  const leftMs = Date.parse(approval.expiresAt) - now;
  return html`<section class="request" aria-labelledby="request-title">
    <p><a href="#/">← Queue</a></p>
    <h2 id="request-title"><span class="tool"><${Visible} text=${approval.tool} /></span> <span class="mono sub">${approval.shortId}</span></h2>
    <dl class="facts">
      <dt>Status</dt><dd data-status=${approval.status}>${approval.status}${approval.statusReason ? html` (<${Visible} text=${approval.statusReason} />)` : null}</dd>
      <dt>Sensitivity</dt><dd><${Sensitivity} level=${approval.sensitivity} /></dd>
      <dt>Requester</dt><dd><${Visible} text=${approval.requester.id} /> (${approval.requester.role})</dd>
      <dt>Requested</dt><dd><time datetime=${approval.requestedAt}>${new Date(approval.requestedAt).toLocaleString()}</time>, ${duration(now - Date.parse(approval.requestedAt))} ago</dd>
      ${approval.status === 'pending'
        ? html`<dt>Expires</dt><dd class="countdown">${leftMs > 0 ? `in ${duration(leftMs)}` : 'now'}</dd>`
        : null}
      <dt>Approvals</dt><dd class="quorum">${approvals} of ${required}</dd>
      <dt>Mode</dt><dd>${approval.mode}</dd>
      ${approval.grantId
        ? html`<dt>Allowed by</dt><dd class="granted-by">standing approval <a class="mono" href="#/grants?all=true">${approval.grantId.slice(0, 8)}</a>, without asking an approver</dd>`
        : null}
    </dl>
    <h3>Arguments</h3>
    <${JsonView} value=${approval.arguments} label="arguments" />
    <h3>Votes</h3>
    <${Decisions} approval=${approval} />
    ${can.audit ? html`<p><a href=${`#/audit?request=${approval.id}`}>Audit events of this request</a></p>` : null}
    ${outcome ? html`<p class="notice" role="status">${outcome}</p>` : null}
    ${approval.status === 'pending' && can.decide
      ? html`<${DecisionForm} approval=${approval} initialVerdict=${verdict} grantCaps=${grantCaps} now=${now} onDecided=${(after, v, grant) => {
          setApproval(after);
          if (verdict) onDecidedByKeyboard?.(after);
          setOutcome(html`${after.status === 'pending' ? `Your ${v === 'approve' ? 'approval' : 'rejection'} is recorded; ${quorumOf(after).approvals} of ${after.requiredApprovals} approvals so far.` : settledLine(after)}${grant ? html` <span class="grant-outcome">${grantOutcome(after, grant)}</span>` : null}`);
        }} />`
      : null}
    ${approval.status !== 'pending' && !outcome ? html`<p class="notice" role="status">${settledLine(approval)}</p>` : null}
    <h3>Other recent requests from <${Visible} text=${approval.requester.id} /></h3>
    <${RecentOfRequester} approval=${approval} />
  </section>`;
}
