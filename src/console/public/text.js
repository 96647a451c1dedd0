// Text from requesters and approvers, shown as what it is. Everything is rendered through
// Preact as text nodes (never innerHTML); on top of that, characters that could repaint what an
// approver sees (bidi overrides, zero-width and other format characters, controls, line
// separators) are shown as visible escapes instead of being applied, like the CLI's safeText.
import { html } from './html.js';

const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const NAMED = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function escapeOf(ch) {
  if (NAMED[ch]) return NAMED[ch];
  let out = '';
  for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** The plain-text form (for titles, notifications, aria labels): unsafe characters as escapes. */
export function safeText(value) {
  return String(value ?? '').replace(UNSAFE, escapeOf);
}

/** A string as text, each unsafe character as a marked escape. */
export function Visible({ text, multiline = false }) {
  const s = String(text ?? '');
  const parts = [];
  let last = 0;
  for (const m of s.matchAll(UNSAFE)) {
    if (m.index > last) parts.push(s.slice(last, m.index));
    if (multiline && m[0] === '\n') parts.push('\n');
    else parts.push(html`<span class="esc" title="a hidden or control character, shown escaped">${escapeOf(m[0])}</span>`);
    last = m.index + m[0].length;
  }
  if (last < s.length) parts.push(s.slice(last));
  return html`<bdi class="user-text">${parts}</bdi>`;
}

/** A one-line summary of arguments: compact JSON, escaped, cut at `max` characters (saying so). */
export function argumentSummary(args, max = 160) {
  let text;
  try {
    text = JSON.stringify(args) ?? 'null';
  } catch {
    text = String(args);
  }
  text = safeText(text);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
