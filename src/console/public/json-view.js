// Arguments as formatted, highlighted JSON, built from text nodes only. Large values are folded
// and say so (how many characters, items or keys are hidden); one click shows them.
import { useState } from 'preact/hooks';
import { html } from './html.js';
import { Visible } from './text.js';

const LONG_STRING = 400;
const MANY_ENTRIES = 25;

function FoldedString({ value }) {
  const [open, setOpen] = useState(false);
  if (open || value.length <= LONG_STRING) return html`<span class="j-str">"<${Visible} text=${value} />"</span>`;
  return html`<span class="j-str">"<${Visible} text=${value.slice(0, LONG_STRING)} />"</span><button type="button" class="fold" onClick=${() => setOpen(true)}>
      … ${value.length - LONG_STRING} more characters hidden (${value.length} in all): show</button>`;
}

function Entries({ entries, depth, open: openAtFirst, kind }) {
  const [open, setOpen] = useState(openAtFirst);
  const [all, setAll] = useState(false);
  const [start, end] = kind === 'array' ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return html`<span class="j-punct">${start}${end}</span>`;
  if (!open) {
    return html`<span class="j-punct">${start}</span><button type="button" class="fold" onClick=${() => setOpen(true)}>
        ${entries.length} ${kind === 'array' ? 'items' : 'keys'} folded: show</button><span class="j-punct">${end}</span>`;
  }
  const shown = all ? entries : entries.slice(0, MANY_ENTRIES);
  return html`<span class="j-punct">${start}</span>
    <div class="j-block">
      ${shown.map(
        ([key, value], i) => html`<div class="j-line">
          ${kind === 'object' ? html`<span class="j-key">"<${Visible} text=${key} />"</span><span class="j-punct">: </span>` : null}
          <${JsonValue} value=${value} depth=${depth + 1} />${i < entries.length - 1 ? html`<span class="j-punct">,</span>` : null}
        </div>`,
      )}
      ${shown.length < entries.length
        ? html`<button type="button" class="fold" onClick=${() => setAll(true)}>… ${entries.length - shown.length} more ${kind === 'array' ? 'items' : 'keys'} hidden: show</button>`
        : null}
    </div><span class="j-punct">${end}</span>`;
}

export function JsonValue({ value, depth = 0 }) {
  if (value === null) return html`<span class="j-null">null</span>`;
  if (typeof value === 'string') return html`<${FoldedString} value=${value} />`;
  if (typeof value === 'number') return html`<span class="j-num">${String(value)}</span>`;
  if (typeof value === 'boolean') return html`<span class="j-bool">${String(value)}</span>`;
  if (Array.isArray(value)) return html`<${Entries} entries=${value.map((v, i) => [i, v])} depth=${depth} open=${depth < 4} kind="array" />`;
  if (typeof value === 'object') return html`<${Entries} entries=${Object.entries(value)} depth=${depth} open=${depth < 4} kind="object" />`;
  return html`<span>${String(value)}</span>`;
}

export function JsonView({ value, label }) {
  return html`<div class="json" role="group" aria-label=${label}><${JsonValue} value=${value} /></div>`;
}
