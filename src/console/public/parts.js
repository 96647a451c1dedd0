// Small pieces shared by the queue and the request view.
import { html } from './html.js';
import { safeText } from './text.js';

/** 75_000 → "1m 15s"; coarse beyond an hour. */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${String(m % 60).padStart(2, '0')}m` : `${Math.floor(h / 24)}d`;
}

/** Approvals that still count (an approver since disabled or demoted does not) against the quorum. */
export function quorumOf(approval) {
  const approvals = approval.decisions.filter((d) => d.verdict === 'approve' && !d.withdrawn).length;
  return { approvals, required: approval.requiredApprovals };
}

const SENSITIVITY_HINT = { LOW: 'runs at once', MEDIUM: 'runs at once', HIGH: 'needs approval', CRITICAL: 'needs approval; highest risk' };

/** Sensitivity in colour and in words: never by colour alone. */
export function Sensitivity({ level }) {
  return html`<span class=${`sens sens-${level}`} title=${SENSITIVITY_HINT[level] ?? ''}>${level}</span>`;
}

/** How a request left the queue, and who settled it: plain text, escaped. */
export function settledLine(approval) {
  const what = `${safeText(approval.tool)} (${approval.shortId}) from ${safeText(approval.requester.id)}`;
  const last = approval.decisions.filter((d) => d.verdict === (approval.status === 'approved' ? 'approve' : 'reject')).at(-1);
  switch (approval.status) {
    case 'approved': {
      const by = approval.decisions.filter((d) => d.verdict === 'approve').map((d) => safeText(d.approver)).join(', ');
      return `${what}: approved by ${by}${last ? `: “${safeText(last.reason)}”` : ''}`;
    }
    case 'rejected':
      return `${what}: rejected by ${last ? `${safeText(last.approver)}: “${safeText(last.reason)}”` : 'an approver'}`;
    case 'expired':
      return `${what}: expired; nobody decided in time`;
    case 'cancelled':
      return `${what}: cancelled${approval.statusReason ? ` (${safeText(approval.statusReason)})` : ''}`;
    default:
      return `${what}: ${approval.status}`;
  }
}
