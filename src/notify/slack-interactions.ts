import type { Verdict } from '../approvals/approval.js';
import type { Requests } from '../approvals/requests.js';
import type { ApprovalViews } from '../approvals/views.js';
import { AppError } from '../core/errors.js';
import type { Persistence } from '../core/persistence.js';
import type { Logger } from '../logger.js';
import type { Principal } from '../policy/policy.service.js';
import type { SlackApp } from './receivers.js';
import { post } from './sender.js';
import { verifySlackRequest } from './signature.js';
import { APPROVE_ACTION, REASON_BLOCK, REASON_CALLBACK, REASON_INPUT, reasonModal, REJECT_ACTION } from './slack-format.js';

/** What the endpoint answers Slack: a status, and for a modal's submission what the modal shows. */
export interface SlackAnswer {
  status: 200 | 400 | 401 | 403 | 404;
  body?: { response_action: 'errors'; errors: Record<string, string> } | { error: { code: string; message: string } };
}

interface BlockActions {
  type: 'block_actions';
  user?: { id?: string };
  team?: { id?: string } | null;
  trigger_id?: string;
  response_url?: string;
  actions?: { action_id?: string; value?: string }[];
}

interface ViewSubmission {
  type: 'view_submission';
  user?: { id?: string };
  team?: { id?: string } | null;
  view?: { callback_id?: string; private_metadata?: string; state?: { values?: Record<string, Record<string, { value?: string | null }>> } };
}

const SLACK_API_TIMEOUT_MS = 5000;

export interface SlackInteractionsDeps {
  slack: SlackApp;
  store: Persistence;
  requests: Requests;
  views: ApprovalViews;
  clock: { now(): number };
  logger: Logger;
}

/**
 * `POST /integrations/slack/interactions`: the Approve and Reject buttons of a Slack message. A
 * press is taken only with a valid, fresh Slack signature, from a Slack user linked to an active
 * toolgate user; it opens a modal that asks for the reason, and the modal's submission decides
 * through the same `requests.decide` as every other channel (four-eyes, quorum, the approver's
 * role, the 409 on a decided request all hold there). The Slack message is updated with the
 * outcome by the outbox, as it is when the request is decided anywhere else.
 */
export class SlackInteractions {
  constructor(private readonly deps: SlackInteractionsDeps) {}

  get configured(): boolean {
    return this.deps.slack.interactive;
  }

  async handle(rawBody: string, timestamp: string | undefined, signature: string | undefined, ctx: { httpRequestId?: string | undefined } = {}): Promise<SlackAnswer> {
    const { slack } = this.deps;
    if (!slack.interactive || !slack.signingSecret) return refusal(404, 'not_found', 'Slack interactivity is not configured (toolgate.json slack.signingSecret and slack.botToken)');
    if (!verifySlackRequest(slack.signingSecret, timestamp, signature, rawBody, this.deps.clock.now())) {
      return refusal(401, 'unauthorized', 'bad or stale Slack request signature');
    }
    let payload: BlockActions | ViewSubmission | { type?: unknown; team?: { id?: string } | null };
    try {
      payload = JSON.parse(new URLSearchParams(rawBody).get('payload') ?? '') as typeof payload;
    } catch {
      return refusal(400, 'validation_failed', 'the body must be form-encoded payload=<JSON>');
    }
    if (!payload || typeof payload !== 'object') return refusal(400, 'validation_failed', 'the payload must be a JSON object');
    if (slack.teamId && payload.team?.id !== slack.teamId) return refusal(403, 'forbidden', 'this Slack workspace is not the one configured');
    if (payload.type === 'block_actions') return this.pressed(payload as BlockActions);
    if (payload.type === 'view_submission') return this.submitted(payload as ViewSubmission, ctx);
    return { status: 200 };
  }

  /** Approve or Reject pressed: ask for the reason, if the presser may decide at all. */
  private async pressed(p: BlockActions): Promise<SlackAnswer> {
    const action = p.actions?.find((a) => a.action_id === APPROVE_ACTION || a.action_id === REJECT_ACTION);
    if (!action || typeof action.value !== 'string') return { status: 200 };
    const verdict: Verdict = action.action_id === APPROVE_ACTION ? 'approve' : 'reject';
    const who = await this.principalOf(p.user?.id);
    if ('refused' in who) {
      await this.tellPresser(p.response_url, who.refused);
      return { status: 200 };
    }
    let approval;
    try {
      approval = await this.deps.views.viewOf(await this.deps.views.resolveId(action.value));
    } catch {
      await this.tellPresser(p.response_url, 'That request no longer exists.');
      return { status: 200 };
    }
    if (approval.status !== 'pending') {
      await this.tellPresser(p.response_url, `Request ${approval.shortId} is already ${approval.status}.`);
      return { status: 200 };
    }
    const opened = await this.slackApi('views.open', {
      trigger_id: p.trigger_id,
      view: reasonModal({ verdict, approval, privateMetadata: JSON.stringify({ id: approval.id, verdict }) }),
    });
    if (!opened) await this.tellPresser(p.response_url, 'Could not open the form for the reason; decide in the console or the CLI.');
    return { status: 200 };
  }

  /** The reason submitted: decide as the linked user, through the one decision path. */
  private async submitted(p: ViewSubmission, ctx: { httpRequestId?: string | undefined }): Promise<SlackAnswer> {
    if (p.view?.callback_id !== REASON_CALLBACK) return { status: 200 };
    let meta: { id?: unknown; verdict?: unknown };
    try {
      meta = JSON.parse(p.view.private_metadata ?? '') as typeof meta;
    } catch {
      return modalError('This form is damaged; press the button again.');
    }
    if (typeof meta.id !== 'string' || (meta.verdict !== 'approve' && meta.verdict !== 'reject')) return modalError('This form is damaged; press the button again.');
    const reason = (p.view.state?.values?.[REASON_BLOCK]?.[REASON_INPUT]?.value ?? '').trim();
    if (reason.length < 1 || reason.length > 1000) return modalError('Give a reason of 1 to 1000 characters.');
    const who = await this.principalOf(p.user?.id);
    if ('refused' in who) return modalError(who.refused);
    try {
      await this.deps.requests.decide(who.principal, meta.id, meta.verdict, reason, ctx);
    } catch (err) {
      if (err instanceof AppError) return modalError(err.message);
      this.deps.logger.error({ err, requestId: meta.id }, 'a decision from Slack failed');
      return modalError('The decision could not be recorded; try again, or decide in the console or the CLI.');
    }
    return { status: 200 };
  }

  /** The toolgate user a Slack user is linked to, read now: unlinked, unknown and disabled users decide nothing. */
  private async principalOf(slackUserId: string | undefined): Promise<{ principal: Principal } | { refused: string }> {
    const { store } = this.deps;
    const link = typeof slackUserId === 'string' ? await store.notify.slackLinkOf(slackUserId) : undefined;
    if (!link) return { refused: 'Your Slack account is not linked to a toolgate approver (toolgate users link-slack <user> <your Slack member id>).' };
    const user = await store.identity.user(link.userId);
    if (!user) return { refused: 'Your Slack account is linked to a toolgate user that no longer exists.' };
    if (!user.active) return { refused: `The toolgate user ${user.id} is disabled.` };
    return { principal: { id: user.id, role: user.role, anonymous: false } };
  }

  /** Calls a Slack Web API method with the bot token; true when Slack answered ok. */
  private async slackApi(method: string, body: unknown): Promise<boolean> {
    const { slack, logger } = this.deps;
    try {
      const res = await post(`${slack.apiUrl}/${method}`, { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${slack.botToken ?? ''}` }, JSON.stringify(body), SLACK_API_TIMEOUT_MS);
      const ok = res.status === 200 && (JSON.parse(res.body) as { ok?: boolean }).ok === true;
      if (!ok) logger.warn({ method, status: res.status, body: res.body.slice(0, 500) }, 'Slack refused an API call');
      return ok;
    } catch (err) {
      logger.warn({ err, method }, 'could not call the Slack API');
      return false;
    }
  }

  /** A message only the presser sees, at the `response_url` Slack gave, if it points where Slack's do. */
  private async tellPresser(responseUrl: string | undefined, text: string): Promise<void> {
    const { slack, logger } = this.deps;
    if (!responseUrl || !responseUrl.startsWith(slack.responseUrlBase)) return;
    try {
      await post(responseUrl, { 'content-type': 'application/json; charset=utf-8' }, JSON.stringify({ response_type: 'ephemeral', replace_original: false, text }), SLACK_API_TIMEOUT_MS);
    } catch (err) {
      logger.warn({ err }, 'could not answer a Slack button press');
    }
  }
}

function refusal(status: 400 | 401 | 403 | 404, code: string, message: string): SlackAnswer {
  return { status, body: { error: { code, message } } };
}

function modalError(message: string): SlackAnswer {
  return { status: 200, body: { response_action: 'errors', errors: { [REASON_BLOCK]: message.slice(0, 300) } } };
}
