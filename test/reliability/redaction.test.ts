import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redact } from '../../src/audit/audit.service.js';
import { api, startTestGateway } from '../helpers.js';

/** Deterministic runs: a failure names its seed and replays the same way. */
const RUNS = { seed: 20261123, numRuns: 300 };

/** Key names a gateway's arguments carry every day; none of them names a secret. */
const plainKey = fc.oneof(
  fc.constantFrom('path', 'content', 'message', 'max_tokens', 'tokens_used', 'author', 'keyboard', 'passenger', 'auth_method', 'name', 'value', 'key', 'id', 'items'),
  fc.stringMatching(/^[a-z]{1,8}$/).filter((k) => !/pass|pwd|secret|token|auth|cookie|session|key|credential|jwt|pin/.test(k)),
);
/** Text with none of the shapes a secret has. */
const plainText = fc.string({ maxLength: 40 }).filter((s) => !/bearer|basic|eyJ|:\/\/|AKIA|ASIA|AIDA|AROA|A3T|BEGIN|tg_/i.test(s));
const plainJson = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, plainText, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(plainKey, tie('value'), { maxKeys: 4 }),
})).value;

/** A random credential string: unique enough that it cannot occur in the surrounding data by chance. */
const credential = fc.stringMatching(/^[A-Za-z0-9]{24,40}$/).map((s) => `Zq9${s}`);
const upper = fc.stringMatching(/^[A-Z0-9]{16}$/);
const b64url = (min: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9_-]{${min},${min + 30}}$`));

/** One secret, and the text that must not survive redaction. */
type Planted = { secret: string; plant: (json: unknown) => unknown };
const secretKeyName = fc.constantFrom(
  'password',
  'Password',
  'db_password',
  'passwd',
  'passphrase',
  'secret',
  'client_secret',
  'token',
  'access_token',
  'refreshToken',
  'X-Auth-Token',
  'authorization',
  'Authorization',
  'Proxy-Authorization',
  'cookie',
  'Set-Cookie',
  'set-cookie',
  'apiKey',
  'api_key',
  'api-key',
  'API_KEY',
  'x-api-key',
  'X-API-Key',
  'accessKey',
  'aws_access_key_id',
  'secretKey',
  'aws_secret_access_key',
  'privateKey',
  'private_key',
  'credentials',
  'session',
  'sessionId',
  'auth',
);
const secretShapes: fc.Arbitrary<{ secret: string; text: string }> = fc.oneof(
  upper.chain((tail) => fc.constantFrom('AKIA', 'ASIA').map((p) => ({ secret: `${p}${tail}`, text: `${p}${tail}` }))),
  fc.tuple(b64url(10), b64url(10), b64url(20)).map(([h, p, s]) => ({ secret: `eyJ${h}.eyJ${p}.${s}`, text: `eyJ${h}.eyJ${p}.${s}` })),
  credential.map((c) => ({ secret: c, text: `Authorization: Bearer ${c}` })),
  credential.map((c) => ({ secret: c, text: `bearer ${c}` })),
  credential.map((c) => ({ secret: c, text: `https://deploy:${c}@git.example.com/repo.git` })),
  credential.map((c) => ({ secret: c, text: `postgres://app:${c}@db:5432/prod` })),
  credential.map((c) => ({ secret: c, text: `-----BEGIN PRIVATE KEY-----\n${c}\n${c}\n-----END PRIVATE KEY-----` })),
  credential.map((c) => ({ secret: c, text: `-----BEGIN RSA PRIVATE KEY-----\n${c}` })),
  credential.map((c) => ({ secret: c, text: `tg_${c}` })),
);
const planted: fc.Arbitrary<Planted> = fc.oneof(
  // under a secret key
  fc.tuple(secretKeyName, credential).map(([key, secret]) => ({ secret, plant: () => ({ [key]: secret }) })),
  // under a secret key, as a nested value
  fc.tuple(secretKeyName, credential).map(([key, secret]) => ({ secret, plant: () => ({ [key]: { nested: [secret] } }) })),
  // a name/value pair naming a secret
  fc.tuple(fc.constantFrom('name', 'key'), secretKeyName, credential).map(([field, name, secret]) => ({ secret, plant: () => ({ [field]: name, value: secret }) })),
  // secret-looking text inside an ordinary string, under an ordinary key
  fc.tuple(secretShapes, plainText, plainText).map(([shape, before, after]) => ({ secret: shape.secret, plant: () => `${before} ${shape.text} ${after}` })),
);

/** Puts `leaf` somewhere inside `json`: wrapped in `depth` random arrays/objects, at a random place. */
function plantAt(json: unknown, leaf: unknown, path: { depth: number; keys: string[]; index: number }): unknown {
  let value = leaf;
  for (let i = 0; i < path.depth; i++) value = i % 2 === 0 ? { [path.keys[i % path.keys.length] ?? 'k']: value } : [value];
  if (Array.isArray(json)) {
    const copy = [...json];
    copy.splice(path.index % (copy.length + 1), 0, value);
    return copy;
  }
  if (json !== null && typeof json === 'object') return { ...json, [`slot${path.index}`]: value };
  return [json, value];
}
const pathArb = fc.record({ depth: fc.integer({ min: 0, max: 60 }), keys: fc.array(plainKey, { minLength: 1, maxLength: 5 }), index: fc.nat(10) });

describe('audit redaction', () => {
  it('leaves random JSON with no secrets in it exactly as it was', () => {
    fc.assert(
      fc.property(plainJson, (json) => {
        expect(redact(json)).toEqual(json);
      }),
      RUNS,
    );
  });

  it('removes a secret planted at a random depth and place in random JSON, whatever its shape', () => {
    fc.assert(
      fc.property(plainJson, planted, pathArb, (json, p, path) => {
        const withSecret = plantAt(json, p.plant(json), path);
        expect(JSON.stringify(withSecret)).toContain(p.secret.slice(0, 12));
        const out = JSON.stringify(redact(withSecret));
        expect(out).not.toContain(p.secret.slice(0, 12));
        expect(out).toContain('[REDACTED');
      }),
      RUNS,
    );
  });

  it('redacts at a depth of 100,000 without exhausting the stack', () => {
    let deep: unknown = { password: 'Zq9deepsecret', note: 'Bearer Zq9deeptoken123' };
    for (let i = 0; i < 100_000; i++) deep = i % 2 ? [deep] : { level: deep };
    let node = redact(deep) as any;
    for (let i = 99_999; i >= 0; i--) node = i % 2 ? node[0] : node.level;
    expect(node).toEqual({ password: '[REDACTED]', note: 'Bearer [REDACTED]' });
  });

  it('keeps the shape and the harmless parts of what it redacts', () => {
    expect(
      redact({
        headers: [
          { name: 'Authorization', value: 'Basic dXNlcjpwYXNz' },
          { name: 'Accept', value: 'application/json' },
          { key: 'password', value: 'hunter2' },
        ],
        url: 'https://alice:s3cret@example.com/path?q=1',
        note: 'the bearer of this letter',
        max_tokens: 512,
        api: { 'X-Api-Key': 'k', keyboard: 'qwerty' },
      }),
    ).toEqual({
      headers: [
        { name: 'Authorization', value: '[REDACTED]' },
        { name: 'Accept', value: 'application/json' },
        { key: 'password', value: '[REDACTED]' },
      ],
      url: 'https://[REDACTED]@example.com/path?q=1',
      note: 'the bearer of this letter',
      max_tokens: 512,
      api: { 'X-Api-Key': '[REDACTED]', keyboard: 'qwerty' },
    });
  });

  it('keeps secrets out of the stored audit log of a real gateway', async () => {
    const t = await startTestGateway();
    try {
      const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
      const args = {
        message: `deploy with AKIAIOSFODNN7EXAMPLE and ${jwt}`,
        deep: { a: [{ b: { headers: [{ name: 'Cookie', value: 'sid=Zq9cookievalue' }] } }] },
        repo: 'https://ci:Zq9urlpassword@git.example.com/x.git',
      };
      const res = await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: { arguments: args } });
      expect(res.status).toBe(200);
      const stored = JSON.stringify(await t.query('select details from audit_events'));
      expect(stored).toContain('deploy with');
      for (const secret of ['AKIAIOSFODNN7EXAMPLE', jwt, 'Zq9cookievalue', 'Zq9urlpassword']) expect(stored).not.toContain(secret);
    } finally {
      await t.close();
    }
  });
});
