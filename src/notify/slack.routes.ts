import { createRoute, z } from '@hono/zod-openapi';
import { access, errors, json, openApiApp } from '../http/openapi-routes.js';
import type { SlackInteractions } from './slack-interactions.js';

export const SLACK_INTERACTIONS_PATH = '/integrations/slack/interactions';

const interactionForm = z.object({ payload: z.string().describe('the interaction as JSON (block_actions or view_submission), as Slack sends it') });
const modalAnswer = z
  .object({ response_action: z.literal('errors'), errors: z.record(z.string(), z.string()) })
  .describe("shown in the modal when the decision was refused (four-eyes, already decided, not linked, …); an empty 200 closes it");

const route = createRoute({
  method: 'post',
  path: SLACK_INTERACTIONS_PATH,
  tags: ['integrations'],
  summary: "Slack's interactivity endpoint: the Approve and Reject buttons and the reason's modal",
  description:
    'Only requests signed by Slack (`X-Slack-Signature`, v0 HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<body>` with the signing secret, the timestamp within 5 minutes) are read. A press by a Slack user linked to an active toolgate user (`toolgate users link-slack`) opens a modal for the reason; its submission decides through the same service as the HTTP API. See docs/notifications.md.',
  ...access('open'),
  request: {
    headers: z.object({ 'x-slack-request-timestamp': z.string().optional(), 'x-slack-signature': z.string().optional() }),
    body: { content: { 'application/x-www-form-urlencoded': { schema: interactionForm } } },
  },
  responses: { 200: { description: 'taken (a refused decision answers the modal with its reason)', content: json(modalAnswer) }, ...errors(400, 401, 403, 404) },
});

/**
 * The route, documented from its `createRoute` definition but read by hand: Slack's signature is
 * over the raw body, which must reach the check byte for byte, before anything parses it.
 */
export function slackRoutes(interactions: SlackInteractions) {
  const app = openApiApp();
  app.openAPIRegistry.registerPath(route);
  app.post(SLACK_INTERACTIONS_PATH, async (c) => {
    const raw = await c.req.text();
    const answer = await interactions.handle(raw, c.req.header('x-slack-request-timestamp'), c.req.header('x-slack-signature'), { httpRequestId: c.get('requestId') });
    if (answer.body) return c.json(answer.body, answer.status);
    return c.body(null, answer.status);
  });
  return app;
}
