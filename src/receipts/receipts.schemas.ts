import { z } from '@hono/zod-openapi';

/** The JWKS document of /.well-known/jwks.json: the Ed25519 public keys that verify receipts. */
export const jwkSchema = z
  .object({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    x: z.string().openapi({ description: 'the public key, base64url' }),
    kid: z.string().openapi({ description: 'the key id: the first 16 hex digits of the SHA-256 of the public key (SPKI DER); a receipt names it in its header' }),
    alg: z.literal('EdDSA'),
    use: z.literal('sig'),
  })
  .openapi('Jwk');

export const jwksSchema = z
  .object({ keys: z.array(jwkSchema) })
  .openapi('Jwks', { description: 'the signing key, and retired keys whose receipts may not have expired yet' });
