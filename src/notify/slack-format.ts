import type { ApprovalView } from '../approvals/approval.js';
import type { NotifyEvent } from './notify.schemas.js';

/*
 * Block Kit messages for approvers. Everything in a request is the requester's to choose (its
 * arguments above all), and the requester is the approver's adversary: nothing they send may
 * repaint the message, link somewhere, or mention anyone. So every requester-controlled string is
 * escaped for mrkdwn (& < >, which is what makes <!channel>, <@U…> and <http://…|label> work),
 * stripped of invisible and direction-changing characters, and shown inside code, where mrkdwn
 * formatting does not apply; text objects are `verbatim`, so Slack does not turn bare URLs or
 * names into links. Mentions appear only where the operator configured them (escalation).
 */

export const APPROVE_ACTION = 'toolgate.approve';
export const REJECT_ACTION = 'toolgate.reject';
export const REASON_CALLBACK = 'toolgate.reason';
export const REASON_BLOCK = 'reason';
export const REASON_INPUT = 'reason_input';

/** Arguments shown in a message, in characters of their JSON; the console has them whole. */
const ARGUMENTS_SHOWN = 1200;

// C0 and C1 controls, DEL, and the invisible format characters (zero-width, bidirectional overrides and isolates, BOM).
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g;

/** Requester text made inert in Slack mrkdwn: escaped, invisible characters shown as \u{…}, backticks that cannot end a code span. */
export function slackText(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(INVISIBLE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)
    .replace(/`/g, 'ˋ');
}

/** Requester text as inline code on one line. */
export function slackCode(text: string, max = 200): string {
  const one = text.replace(/\r?\n|\r/g, ' ⏎ ');
  const cut = one.length > max ? `${one.slice(0, max - 1)}…` : one;
  return `\`${slackText(cut)}\``;
}

/** Arguments as a code block, cut to a bounded length (head and tail: the dangerous part is often at the end). */
export function argumentsBlock(args: unknown, truncated: boolean): string {
  let json = JSON.stringify(args, null, 1) ?? 'null';
  let cut = truncated;
  if (json.length > ARGUMENTS_SHOWN) {
    const side = Math.floor(ARGUMENTS_SHOWN / 2);
    json = `${json.slice(0, side)}\n…\n${json.slice(json.length - side)}`;
    cut = true;
  }
  return `\`\`\`${slackText(json)}\`\`\`${cut ? '\n_shortened: the console shows the arguments whole_' : ''}`;
}

function timeLeft(expiresAt: string, now: number): string {
  const s = Math.round((Date.parse(expiresAt) - now) / 1000);
  if (s <= 0) return 'none (expired)';
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

const mrkdwn = (text: string) => ({ type: 'mrkdwn', text, verbatim: true });

const OUTCOME: Record<string, string> = {
  approved: ':white_check_mark: Approved',
  rejected: ':no_entry: Rejected',
  expired: ':hourglass: Expired',
  cancelled: ':heavy_multiplication_x: Cancelled',
};

/** Who decided and why, from the request's decisions (requester and approver text escaped). */
function decisionsText(a: ApprovalView): string {
  return a.decisions
    .map((d) => `${d.verdict === 'approve' ? 'approved' : 'rejected'} by ${slackCode(d.approver, 64)}: ${slackCode(d.reason, 300)}${d.withdrawn ? ' (no longer counts)' : ''}`)
    .join('\n');
}

/** How an operator-configured mention is written in Slack. */
export function mentionText(mention: string): string {
  if (mention === 'here' || mention === 'channel') return `<!${mention}>`;
  return mention.startsWith('S') ? `<!subteam^${mention}>` : `<@${mention}>`;
}

export interface SlackMessage {
  text: string;
  blocks: unknown[];
}

/**
 * The message for an event. With `buttons`, a pending request carries Approve and Reject, whose
 * value is the request's id (the press is verified and decided server-side, as any other decision).
 */
export function slackMessage(event: NotifyEvent, options: { now: number; buttons: boolean }): SlackMessage {
  const a = event.approval as unknown as ApprovalView & { argumentsTruncated?: boolean };
  const pending = a.status === 'pending';
  const head =
    event.type === 'approval.escalated'
      ? `:rotating_light: Still waiting after ${Math.round(event.escalation?.afterSeconds ?? 0)} s`
      : pending
        ? ':raised_hand: Approval needed'
        : (OUTCOME[a.status] ?? a.status);
  const blocks: unknown[] = [];
  if (event.escalation && event.escalation.mention.length > 0) blocks.push({ type: 'section', text: mrkdwn(event.escalation.mention.map(mentionText).join(' ')) });
  blocks.push({ type: 'section', text: mrkdwn(`*${head}*: ${a.sensitivity} tool ${slackCode(a.tool, 128)}`) });
  blocks.push({
    type: 'section',
    fields: [
      mrkdwn(`*Requester*\n${slackCode(a.requester.id, 64)} (${slackCode(a.requester.role, 32)})`),
      mrkdwn(`*Sensitivity*\n${a.sensitivity}`),
      mrkdwn(pending ? `*Time left*\n${timeLeft(a.expiresAt, options.now)}` : `*Status*\n${a.status}`),
      mrkdwn(`*Approvals*\n${a.decisions.filter((d) => d.verdict === 'approve' && !d.withdrawn).length} of ${a.requiredApprovals}`),
    ],
  });
  blocks.push({ type: 'section', text: mrkdwn(`*Arguments*\n${argumentsBlock(a.arguments, a.argumentsTruncated === true)}`) });
  if (a.decisions.length > 0) blocks.push({ type: 'section', text: mrkdwn(decisionsText(a)) });
  if (!pending && a.statusReason && a.decisions.length === 0) blocks.push({ type: 'section', text: mrkdwn(`Reason: ${slackCode(a.statusReason, 300)}`) });
  const context = [`request \`${a.shortId}\``];
  if (event.consoleUrl) context.push(`<${event.consoleUrl}|Open in the console>`);
  blocks.push({ type: 'context', elements: [mrkdwn(context.join(' · '))] });
  if (pending && options.buttons) {
    blocks.push({
      type: 'actions',
      block_id: 'decision',
      elements: [
        { type: 'button', action_id: APPROVE_ACTION, text: { type: 'plain_text', text: 'Approve' }, style: 'primary', value: a.id },
        { type: 'button', action_id: REJECT_ACTION, text: { type: 'plain_text', text: 'Reject' }, style: 'danger', value: a.id },
      ],
    });
  }
  // The notification's text: no requester text beyond the tool's name, which is a tool name (TOOL_NAME).
  const text = `${head.replace(/^:[a-z_]+: /, '')}: ${a.sensitivity} ${slackText(a.tool)} (request ${a.shortId})`;
  return { text, blocks };
}

/** The modal that asks for the reason of a decision pressed in Slack. */
export function reasonModal(input: { verdict: 'approve' | 'reject'; approval: { tool: string; shortId: string }; privateMetadata: string }) {
  const verb = input.verdict === 'approve' ? 'Approve' : 'Reject';
  return {
    type: 'modal',
    callback_id: REASON_CALLBACK,
    private_metadata: input.privateMetadata,
    title: { type: 'plain_text', text: `${verb} request` },
    submit: { type: 'plain_text', text: verb },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: mrkdwn(`${verb} ${slackCode(input.approval.tool, 128)} (request \`${input.approval.shortId}\`)?`) },
      {
        type: 'input',
        block_id: REASON_BLOCK,
        label: { type: 'plain_text', text: 'Reason' },
        element: { type: 'plain_text_input', action_id: REASON_INPUT, multiline: true, min_length: 1, max_length: 1000 },
      },
    ],
  };
}
