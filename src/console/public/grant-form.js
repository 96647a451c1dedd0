// The standing approval beside Approve: what the approver asks for, and what it will cover,
// shown from the gateway's own preview (its rules and caps) before they confirm.
import { html } from './html.js';
import { safeText, Visible } from './text.js';

/** 5400 → "1 h 30 min"; exact, so the approver reads what the gateway will apply. */
export function span(seconds) {
  const units = [['day', 86_400], ['h', 3_600], ['min', 60], ['s', 1]];
  const parts = [];
  let left = seconds;
  for (const [name, size] of units) {
    const n = Math.floor(left / size);
    if (n > 0) parts.push(name === 'day' ? `${n} day${n === 1 ? '' : 's'}` : `${n} ${name}`);
    left -= n * size;
  }
  return parts.join(' ') || '0 s';
}

/** Why no standing approval can be asked for here, or null when one may be (the gateway still has the last word). */
export function ineligible(approval, caps) {
  if (!caps) return null;
  if (approval.sensitivity !== 'HIGH' && approval.sensitivity !== 'CRITICAL') return `${approval.sensitivity} calls need no approval, so no standing approval either.`;
  if (caps[approval.sensitivity]) return null;
  return approval.sensitivity === 'CRITICAL'
    ? 'Standing approvals are off for CRITICAL tools on this gateway (the operator allows them with GRANT_MAX_DURATION_CRITICAL).'
    : 'Standing approvals are off for HIGH tools on this gateway (GRANT_MAX_DURATION_HIGH is 0).';
}

/** The empty choice: exact arguments, no bounds yet. */
export const NO_GRANT = { on: false, for: '', times: '', scope: 'exact', patterns: {} };

/** The `grant` body the approval will carry, from the form's choice; or an error to show instead. */
export function grantRequestOf(choice) {
  const grant = {};
  if (choice.for.trim() !== '') grant.for = choice.for.trim();
  if (choice.times.trim() !== '') grant.times = Number(choice.times.trim());
  if (choice.scope === 'any') grant.anyArgs = true;
  if (choice.scope === 'match') {
    const match = Object.fromEntries(Object.entries(choice.patterns).filter(([, p]) => p !== ''));
    if (Object.keys(match).length === 0) return { error: 'Give a pattern for at least one argument, or choose "exactly these arguments".' };
    grant.match = match;
  }
  return { grant };
}

/** The choice: bounds and scope. Only string arguments can be constrained by a pattern. */
export function GrantChoice({ approval, caps, choice, setChoice, disabled }) {
  const why = ineligible(approval, caps);
  const cap = caps?.[approval.sensitivity];
  const set = (patch) => setChoice({ ...choice, ...patch });
  const args = approval.arguments && typeof approval.arguments === 'object' && !Array.isArray(approval.arguments) ? approval.arguments : {};
  const strings = Object.keys(args).filter((k) => typeof args[k] === 'string');
  return html`<fieldset class="grant" disabled=${disabled}>
    <legend><label><input type="checkbox" id="grant-on" checked=${choice.on && !why} disabled=${!!why} onChange=${(e) => set({ on: e.currentTarget.checked })} /> Also allow this call again (standing approval)</label></legend>
    ${why ? html`<p class="hint" data-ineligible="true">${why}</p>` : null}
    ${choice.on && !why
      ? html`<div class="grant-bounds">
            <label>Allow again for <input id="grant-for" placeholder="15m" maxlength="20" value=${choice.for} onInput=${(e) => set({ for: e.currentTarget.value })} /></label>
            <label>At most this many calls <input id="grant-times" type="number" min="1" step="1" inputmode="numeric" value=${choice.times} onInput=${(e) => set({ times: e.currentTarget.value })} /></label>
          </div>
          <p class="hint">A time (90s, 15m, 2h, 1d), a number of calls, or both; whichever ends first.${cap ? ` This gateway allows at most ${span(cap.maxSeconds)} and ${cap.maxUses} calls for ${approval.sensitivity} tools; a bound left empty is that cap.` : ''}</p>
          <fieldset class="grant-scope">
            <legend>Which arguments</legend>
            <label><input type="radio" name="grant-scope" value="exact" checked=${choice.scope === 'exact'} onChange=${() => set({ scope: 'exact' })} /> Exactly these arguments</label>
            <label><input type="radio" name="grant-scope" value="match" disabled=${strings.length === 0} checked=${choice.scope === 'match'} onChange=${() => set({ scope: 'match' })} /> Constrain named arguments; every other argument exactly as now${strings.length === 0 ? ' (this request has no text argument to constrain)' : ''}</label>
            ${choice.scope === 'match'
              ? html`<div class="grant-patterns">${strings.map(
                  (k) => html`<label class="pattern"><span><${Visible} text=${k} /></span>
                    <input class="mono" aria-label=${`pattern for argument ${safeText(k)}`} data-key=${k} placeholder="leave empty: exactly as now" maxlength="1000" value=${choice.patterns[k] ?? ''}
                      onInput=${(e) => set({ patterns: { ...choice.patterns, [k]: e.currentTarget.value } })} /></label>`,
                )}
                <p class="hint">A pattern is a value (equal), <code>prefix/**</code> (anything under that path) or a glob (<code>*</code> any characters, <code>/</code> included; <code>?</code> one). The value now must match it; a value with a <code>..</code> segment never matches a prefix or glob.</p></div>`
              : null}
            <label><input type="radio" name="grant-scope" value="any" checked=${choice.scope === 'any'} onChange=${() => set({ scope: 'any' })} /> Any arguments of this tool</label>
          </fieldset>`
      : null}
  </fieldset>`;
}

const MATCHER = {
  eq: (v) => html`equal to “<${Visible} text=${v} />”`,
  prefix: (v) => html`anything under “<${Visible} text=${v} />” (no “..” segments)`,
  glob: (v) => html`matching the glob “<${Visible} text=${v} />” (<code>*</code> any characters, <code>/</code> included; no “..” segments)`,
};

/** One argument's value as compact JSON, escaped; a long one cut, saying so (it is whole above). */
function ArgValue({ value }) {
  let text = JSON.stringify(value) ?? 'undefined';
  const cut = text.length > 240;
  if (cut) text = text.slice(0, 239);
  return html`<code class="user-text"><${Visible} text=${text} /></code>${cut ? html`<span class="sub">… (${JSON.stringify(value).length} characters in all, shown whole above)</span>` : null}`;
}

/** The quorum's part, as the gateway applies it: made only when reached, if every counted approval asked for one. */
function quorumNote(preview) {
  const { requiredApprovals: required, approvals } = preview;
  if (required <= 1) return null;
  const narrowest = 'It then has the narrowest terms among theirs: the shortest time, the fewest calls, and this scope only if they all asked for the same one, else exactly these arguments.';
  if (approvals + 1 < required)
    return `This request needs ${required} approvals (${approvals} so far; yours would be approval ${approvals + 1}). The standing approval takes effect only when the quorum is reached, and only if every approval that counts asks for one. ${narrowest}`;
  return `Yours completes the quorum of ${required}. The standing approval is made only if the ${approvals === 1 ? 'earlier approval' : `${approvals} earlier approvals`} also asked for one. ${narrowest}`;
}

/** What the grant will cover, as the gateway read it, for the approver to confirm. */
export function GrantSummary({ preview, grant, now }) {
  const args = preview.arguments && typeof preview.arguments === 'object' ? preview.arguments : {};
  const keys = Object.keys(args);
  const until = new Date(now + preview.seconds * 1000);
  const note = quorumNote(preview);
  let scope;
  if (preview.scope === 'any') scope = html`<strong>ANY arguments</strong> of this tool: whatever the requester sends`;
  else if (keys.length === 0) scope = html`exactly these arguments: none`;
  else
    scope = html`${preview.scope === 'exact' ? 'exactly these arguments:' : 'constrained as follows:'}<ul class="grant-args">${keys.map((k) => {
      const m = preview.match[k];
      return html`<li data-key=${k}><code><${Visible} text=${k} /></code> ${m ? html`<strong>${MATCHER[m.kind](m.value)}</strong>` : html`= <${ArgValue} value=${args[k]} />`}</li>`;
    })}</ul>${preview.scope === 'match' ? html`<span class="sub">No argument may be added or left out.</span>` : null}`;
  return html`<div class="grant-summary" data-scope=${preview.scope}>
    <p>Approving will also let <strong><${Visible} text=${preview.requester} /></strong> call <strong><${Visible} text=${preview.tool} /></strong> (${preview.sensitivity}) again <strong>without asking anyone</strong>:</p>
    <ul>
      <li class="grant-who">requester: <${Visible} text=${preview.requester} /> only</li>
      <li class="grant-tool">tool: <${Visible} text=${preview.tool} /> only</li>
      <li class="grant-scope-text">arguments: ${scope}</li>
      <li class="grant-time">for ${span(preview.seconds)}${grant.for === undefined ? ' (the longest this gateway allows)' : ''}, until about <time datetime=${until.toISOString()}>${until.toLocaleString()}</time></li>
      <li class="grant-uses">at most ${preview.uses} call${preview.uses === 1 ? '' : 's'}${grant.times === undefined ? ' (the most this gateway allows)' : ''}, whichever ends first</li>
    </ul>
    ${note ? html`<p class="quorum-note">${note}</p>` : null}
  </div>`;
}

/** The grant a confirmed approval made, in one line of text (escaped where the requester wrote it). */
export function GrantMade({ grant }) {
  return html`<span>Standing approval <span class="mono">${grant.id.slice(0, 8)}</span> made: <${Visible} text=${grant.tool} /> for <${Visible} text=${grant.requester} />, until <time datetime=${grant.expiresAt}>${new Date(grant.expiresAt).toLocaleString()}</time>, ${grant.usesLeft ?? 'unlimited'} calls, <${Visible} text=${grant.scopeText} />. <a href="#/grants">Standing approvals</a></span>`;
}
