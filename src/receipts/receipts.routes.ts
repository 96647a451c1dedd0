import { createRoute } from '@hono/zod-openapi';
import { access, json, openApiApp } from '../http/openapi-routes.js';
import type { ReceiptSigner } from './receipts.js';
import { jwksSchema } from './receipts.schemas.js';

/** `GET /.well-known/jwks.json`: open to anyone, as whoever checks a receipt may hold no token. */
export function receiptsRoutes(deps: { receipts: ReceiptSigner }) {
  const app = openApiApp();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/.well-known/jwks.json',
      tags: ['receipts'],
      summary: 'The public keys that verify receipts (JWKS)',
      description: 'Receipts are compact JWS (EdDSA) naming their key in `kid`. A retired key stays here until the last receipts it signed have expired. See docs/receipts.md.',
      ...access('open'),
      responses: { 200: { description: 'the key set', content: json(jwksSchema) } },
    }),
    async (c) => {
      c.header('Cache-Control', 'public, max-age=300');
      return c.json(jwksSchema.parse(await deps.receipts.jwks()), 200);
    },
  );
  return app;
}
