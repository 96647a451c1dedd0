/**
 * Redaction of audit details: values under secret-looking keys, the value of a name/value pair
 * that names a secret (`{"name":"Authorization","value":…}`), and secret-looking text anywhere in
 * a string (cloud keys, JWTs, bearer credentials, URL passwords, PEM private keys, toolgate tokens).
 * The walk is iterative, so no depth of input can exhaust the stack.
 */

export const REDACTED = '[REDACTED]';

/** Words that make a key secret wherever they stand in it (`db_password`, `sessionId`, `X-Auth-Token`). */
const SECRET_WORDS = new Set([
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'secrets',
  'token',
  'credential',
  'credentials',
  'authorization',
  'cookie',
  'cookies',
  'session',
  'sessionid',
  'apikey',
  'accesskey',
  'secretkey',
  'privatekey',
  'clientsecret',
  'jwt',
]);

/** Two-word spellings: `api_key`, `X-Api-Key`, `accessKeyId`, `private-key`. */
const SECRET_PAIRS = new Set(['api key', 'access key', 'secret key', 'private key', 'client secret', 'auth token', 'set cookie', 'session id']);

/** Keys that are secret only on their own: `auth` and `pass`, but not `auth_method` or `passenger`. */
const SECRET_WHOLE_KEYS = new Set(['auth', 'pass', 'pin']);

function wordsOf(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

const keyVerdicts = new Map<string, boolean>();

/** Whether a key names a secret; remembered per key name, since the same few names recur. */
export function isSecretKey(key: string): boolean {
  let verdict = keyVerdicts.get(key);
  if (verdict === undefined) {
    verdict = judgeKey(key);
    if (keyVerdicts.size >= 10_000) keyVerdicts.clear();
    keyVerdicts.set(key, verdict);
  }
  return verdict;
}

function judgeKey(key: string): boolean {
  const words = wordsOf(key);
  if (words.length === 0) return false;
  if (SECRET_WHOLE_KEYS.has(words.join(''))) return true;
  for (let i = 0; i < words.length; i++) {
    if (SECRET_WORDS.has(words[i]!)) return true;
    if (i > 0 && SECRET_PAIRS.has(`${words[i - 1]} ${words[i]}`)) return true;
  }
  return SECRET_WORDS.has(words.join(''));
}

/** Secret-looking text, each with what it becomes. Order matters: a PEM block before anything inside it. */
const SECRET_PATTERNS: [RegExp, (match: string, ...groups: string[]) => string][] = [
  [/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g, () => '[REDACTED PRIVATE KEY]'],
  // URL userinfo with a password: https://user:pass@host
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]*:[^\s/?#@"'<>]*@/gi, (_m, scheme) => `${scheme}${REDACTED}@`],
  [/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, () => REDACTED],
  [/\b(?:AKIA|ASIA|AIDA|AROA|A3T[A-Z0-9])[A-Z0-9]{12,}\b/g, () => REDACTED],
  [/\btg_[A-Za-z0-9_-]{16,}/g, () => REDACTED],
  // An HTTP credential: "Bearer <token>" / "Basic <base64>"; prose such as "the bearer of" is left alone.
  [
    /\b(Bearer|Basic)(\s+)([A-Za-z0-9._~+/-]+=*)/gi,
    (match, scheme, space, credential) => {
      const looksLikeCredential = credential!.length >= 8 && (/\d/.test(credential!) || credential!.length >= 20);
      return looksLikeCredential ? `${scheme}${space}${REDACTED}` : match;
    },
  ],
];

/** A cheap first look: text without any of these cannot match a pattern below. */
const MAY_HOLD_SECRET = /-----BEGIN|:\/\/|eyJ|AKIA|ASIA|AIDA|AROA|A3T|tg_|bearer|basic/i;

/** Replaces secret-looking parts of a string; everything else stays as it was. */
export function redactText(text: string): string {
  if (!MAY_HOLD_SECRET.test(text)) return text;
  let out = text;
  for (const [pattern, replace] of SECRET_PATTERNS) {
    pattern.lastIndex = 0;
    out = out.replace(pattern, replace as (substring: string, ...args: unknown[]) => string);
  }
  return out;
}

function namesSecret(record: Record<string, unknown>): boolean {
  for (const field of ['name', 'key', 'Name', 'Key', 'header', 'field']) {
    const named = record[field];
    if (typeof named === 'string' && isSecretKey(named)) return true;
  }
  return false;
}

type Container = Record<string, unknown> | unknown[];

/**
 * A redacted copy of `value`, at any depth. Keys that look secret keep their name and lose their
 * value; so does the `value` of a pair that names a secret. Strings are scrubbed of secret-looking
 * text. Input is expected to be JSON data; a repeated object is copied once and shared, so even a
 * cycle ends the walk.
 */
export function redact(value: unknown): unknown {
  const holder: Record<string, unknown> = {};
  const copies = new WeakMap<object, Container>();
  const work: [source: unknown, target: Container, slot: string | number][] = [[value, holder, 'root']];
  while (work.length > 0) {
    const [source, target, slot] = work.pop()!;
    (target as Record<string | number, unknown>)[slot] = copyOf(source, copies, work);
  }
  return holder.root;
}

function copyOf(source: unknown, copies: WeakMap<object, Container>, work: [unknown, Container, string | number][]): unknown {
  if (typeof source === 'string') return redactText(source);
  if (source === null || typeof source !== 'object') return source;
  const seen = copies.get(source);
  if (seen) return seen;
  if (Array.isArray(source)) {
    const copy: unknown[] = new Array(source.length);
    copies.set(source, copy);
    for (let i = 0; i < source.length; i++) work.push([source[i], copy, i]);
    return copy;
  }
  const record = source as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  copies.set(source, copy);
  const pairNamesSecret = ('value' in record || 'Value' in record) && namesSecret(record);
  for (const key of Object.keys(record)) {
    const safeKey = redactText(key);
    if (isSecretKey(key) || (pairNamesSecret && (key === 'value' || key === 'Value'))) copy[safeKey] = REDACTED;
    else work.push([record[key], copy, safeKey]);
  }
  return copy;
}
