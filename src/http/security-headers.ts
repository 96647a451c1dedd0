/**
 * Headers that keep a browser from doing anything with a response but show it: no type sniffing,
 * no framing, no scripts, no referrer. JSON and text responses get `default-src 'none'`; a page
 * that needs more (the docs page's inline style) sets its own policy, which is kept.
 */
export const SECURITY_HEADERS: readonly [string, string][] = [
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Frame-Options', 'DENY'],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
];

export const DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Sets the security headers on `res` in place (a Content-Security-Policy already there stays);
 * a response whose headers are immutable is copied first.
 */
export function withSecurityHeaders(res: Response): Response {
  try {
    setAll(res.headers);
    return res;
  } catch {
    const copy = new Response(res.body, res);
    setAll(copy.headers);
    return copy;
  }
}

function setAll(headers: Headers) {
  for (const [name, value] of SECURITY_HEADERS) headers.set(name, value);
  if (!headers.has('content-security-policy')) headers.set('Content-Security-Policy', DEFAULT_CSP);
}

/** A policy for an HTML page whose only active content is inline `<style>` blocks, allowed by hash. */
export function stylesOnlyCsp(styleHashes: string[]): string {
  return `default-src 'none'; style-src ${styleHashes.map((h) => `'sha256-${h}'`).join(' ')}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`;
}
