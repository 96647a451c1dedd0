import { shortenValue, type ApprovalView } from '../src/approvals/approval.js';

/**
 * Characters that must never reach a terminal raw: C0 and C1 controls and DEL (\p{Cc}: they move
 * the cursor, clear lines, start escape sequences), format characters (\p{Cf}: bidi overrides
 * and isolates, zero-width spaces and joiners, the BOM, tag characters), line and paragraph
 * separators, and lone surrogates.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

const hex4 = (unit: number) => `\\u${unit.toString(16).padStart(4, '0')}`;

/**
 * Text from the gateway, the database or a user made safe to print: every unsafe character is
 * shown as an escape (`\u202e`, `\u001b`, `\n`). Code points above U+FFFF are written as their
 * surrogate pair (`\udb40\udc01`), so escaped JSON stays valid JSON. Printable text is unchanged.
 */
export function safeText(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  return text.replace(UNSAFE, (ch) => {
    const named = NAMED[ch];
    if (named) return named;
    let out = '';
    for (let i = 0; i < ch.length; i++) out += hex4(ch.charCodeAt(i));
    return out;
  });
}

/** JSON (pretty or not) made safe line by line: JSON.stringify escapes C0 controls, not C1, DEL or bidi. */
export function safeJson(value: unknown, indent?: number): string {
  return (JSON.stringify(value, null, indent) ?? 'null').split('\n').map(safeText).join('\n');
}

/**
 * Text ready for the terminal. Only `term` and the paints make one, and both escape every
 * string they are given, so data cannot reach the terminal without going through safeText;
 * the colours are added after the escaping.
 */
export class TerminalText {
  constructor(readonly text: string) {}
  toString() {
    return this.text;
  }
}

type Piece = string | number | TerminalText | null | undefined;
const piece = (v: Piece) => (v instanceof TerminalText ? v.text : safeText(v ?? ''));

/** A template whose literal parts are the program's own text and whose values are all escaped. */
export function term(strings: TemplateStringsArray, ...values: Piece[]): TerminalText {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1]!;
  return new TerminalText(out);
}

/** Joins pieces (each escaped unless already terminal text). */
export function joinTerm(parts: readonly Piece[], separator = ''): TerminalText {
  return new TerminalText(parts.map(piece).join(separator));
}

export type PaintFn = (s: Piece) => TerminalText;

export interface Paint {
  bold: PaintFn;
  dim: PaintFn;
  red: PaintFn;
  yellow: PaintFn;
  green: PaintFn;
  cyan: PaintFn;
}

const wrap =
  (open: number, close: number): PaintFn =>
  (s) =>
    new TerminalText(`\x1b[${open}m${piece(s)}\x1b[${close}m`);
export const colours: Paint = { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), yellow: wrap(33, 39), green: wrap(32, 39), cyan: wrap(36, 39) };
const asIs: PaintFn = (s) => new TerminalText(piece(s));
export const plain: Paint = { bold: asIs, dim: asIs, red: asIs, yellow: asIs, green: asIs, cyan: asIs };

export function timeLeft(expiresAt: string, now = Date.now()): string {
  const ms = Date.parse(expiresAt) - now;
  if (ms <= 0) return 'expired';
  const s = Math.ceil(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function sensitivityColour(p: Paint, sensitivity: string) {
  return sensitivity === 'CRITICAL' ? p.red(p.bold(sensitivity)) : sensitivity === 'HIGH' ? p.yellow(sensitivity) : term`${sensitivity}`;
}

/** `interrupted` stands out: the tool may or may not have run, and nobody will run it again. */
function executionColour(p: Paint, status: string) {
  return status === 'succeeded' ? p.green(status) : status === 'failed' ? p.red(status) : status === 'interrupted' ? p.yellow(p.bold(status)) : term`${status}`;
}

export const LINE_ARGUMENTS_WIDTH = 120;

/**
 * Arguments in at most about `width` characters of JSON. Long strings keep their head and tail
 * (the end of a shell command is often the dangerous part); when that is not enough, the whole
 * JSON keeps its head and tail. `shortened` says whether anything was left out.
 */
export function previewArguments(args: unknown, width = LINE_ARGUMENTS_WIDTH): { text: string; shortened: boolean } {
  const full = JSON.stringify(args) ?? 'null';
  if (full.length <= width) return { text: full, shortened: false };
  for (let cap = width; cap >= 12; cap = Math.floor(cap * 0.7)) {
    const text = JSON.stringify(shortenValue(args, cap).value);
    if (text.length <= width) return { text, shortened: true };
  }
  const half = Math.floor((width - 1) / 2);
  return { text: `${full.slice(0, half)}…${full.slice(full.length - half)}`, shortened: true };
}

/**
 * Arguments as a list line shows them. When shortened, here or already by the gateway (a pushed
 * list carries a bounded summary), the line says so and how many bytes of the JSON it leaves out.
 */
export function argumentsPreview(a: Pick<ApprovalView, 'arguments'> & { argumentsBytes?: number; argumentsTruncated?: boolean }): TerminalText {
  const { text, shortened } = previewArguments(a.arguments);
  if (!shortened && !a.argumentsTruncated) return term`${text}`;
  const total = a.argumentsTruncated && a.argumentsBytes !== undefined ? a.argumentsBytes : Buffer.byteLength(JSON.stringify(a.arguments) ?? '');
  const shown = Buffer.byteLength(text.replaceAll('…', ''));
  return term`${text} … (+${Math.max(0, total - shown)} bytes)`;
}

/** One line: short id, tool, sensitivity, requester, time left, arguments (shortened, and saying so). */
export function approvalLine(a: ApprovalView, p: Paint, now = Date.now()): TerminalText {
  const state = a.status === 'pending' ? `${timeLeft(a.expiresAt, now)} left` : a.status;
  const votes = a.requiredApprovals > 1 ? ` ${a.decisions.filter((d) => d.verdict === 'approve').length}/${a.requiredApprovals}` : '';
  return term`${p.bold(p.cyan(a.shortId))}  ${p.bold(a.tool)}  ${sensitivityColour(p, a.sensitivity)}  by ${a.requester.id} (${a.requester.role})  ${p.dim(state)}${votes}  ${argumentsPreview(a)}`;
}

/** Everything about one request; the arguments whole, as pretty JSON, escaped. */
export function approvalDetails(a: ApprovalView, p: Paint, now = Date.now()): TerminalText {
  const lines = [
    term`${p.bold('id')}          ${a.id}`,
    term`${p.bold('tool')}        ${a.tool} (${sensitivityColour(p, a.sensitivity)})`,
    term`${p.bold('requester')}   ${a.requester.id} (${a.requester.role})`,
    term`${p.bold('status')}      ${a.status}${a.statusReason ? term` — ${a.statusReason}` : ''}`,
    term`${p.bold('mode')}        ${a.mode}`,
    term`${p.bold('requested')}   ${a.requestedAt}`,
    term`${p.bold('expires')}     ${a.expiresAt}${a.status === 'pending' ? ` (${timeLeft(a.expiresAt, now)} left)` : ''}`,
    term`${p.bold('approvals')}   ${a.decisions.filter((d) => d.verdict === 'approve').length}/${a.requiredApprovals}`,
    ...a.decisions.map((d) => term`  ${d.at}  ${d.approver}  ${d.verdict}: ${d.reason}`),
    term`${p.bold('execution')}   ${executionColour(p, a.execution.status)}${a.execution.error ? term` — ${a.execution.error}` : ''}`,
    term`${p.bold('arguments')}   ${new TerminalText(safeJson(a.arguments, 2).split('\n').join('\n            '))}`,
    term`${p.bold('call hash')}   ${a.callHash ?? 'none (made before binding)'}`,
    term`${p.bold('policy')}      version ${a.policyVersion ?? 'unknown'}`,
    ...(a.receipt ? [term`${p.bold('receipt')}     ${a.receipt}`] : []),
  ];
  return joinTerm(lines, '\n');
}
