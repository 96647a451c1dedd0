import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { AppError } from '../core/errors.js';

/**
 * Deepest nesting of arrays and objects a JSON document may have. Parsing is iterative, but
 * validation, redaction and serialization recurse: a few thousand levels, well under any body
 * limit, would overflow the stack. Real tool arguments nest a handful of levels.
 */
export const MAX_JSON_DEPTH = 64;

/** True when `text` opens more than `max` arrays or objects inside one another (strings skipped). */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 34 /* quote */) {
      // Jump to the closing quote: one not preceded by an odd run of backslashes.
      let end = i + 1;
      // Short strings (keys) are walked; long ones (contents) are jumped with indexOf.
      const walkTo = Math.min(text.length, i + 32);
      while (end < walkTo && text.charCodeAt(end) !== 34 && text.charCodeAt(end) !== 92) end++;
      if (end < walkTo && text.charCodeAt(end) === 34) {
        i = end;
        continue;
      }
      end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end === -1) return false; // unterminated: JSON.parse says so
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 92) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = end;
    } else if (ch === 91 /* [ */ || ch === 123 /* { */) {
      if (++depth > max) return true;
    } else if (ch === 93 /* ] */ || ch === 125 /* } */) depth--;
  }
  return false;
}

/** JSON.parse with the nesting limit; `what` names the input in the error ("the request body"). */
export function parseJsonText(text: string, what = 'the request body'): unknown {
  if (jsonTooDeep(text)) throw new AppError('invalid_json', `${what} nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('invalid_json', `${what} is not valid JSON`);
  }
}

/** 400 `validation_failed`: the message names the first field that failed, `issues` lists up to 10. */
export function validationFailed(error: z.ZodError, where: string): AppError<'validation_failed'> {
  const issue = error.issues[0]!;
  const path = issue.path.length ? `${where}.${issue.path.join('.')}` : where;
  return new AppError('validation_failed', `${path}: ${issue.message}`, {
    issues: error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String), message: i.message })),
  });
}

/**
 * The routes' validation hook (`defaultHook`): a request that fails its route's schema is the
 * catalogue's 400 `validation_failed`, answered by the one error mapper like every other error.
 */
export function throwValidationFailure(result: { success: boolean; error?: unknown; target: string }): void {
  if (!result.success) throw validationFailed(result.error as z.ZodError, result.target === 'json' ? 'body' : result.target);
}

/**
 * Reads a JSON body under toolgate's rules before the route's schema sees it: the nesting limit
 * and `invalid_json` for text that is not JSON, or `emptyAs` for an empty body. The route's
 * validator reads the body through `c.req.json()`, which then returns this value, parsed once.
 */
export function jsonBody(options: { emptyAs?: unknown } = {}): MiddlewareHandler {
  return async function jsonBodyMiddleware(c, next) {
    const value = await readJson(c, options);
    c.req.json = <T>() => Promise.resolve(value as T);
    // Returned, not awaited: a call that then waits for an approver keeps no frame of this.
    return next();
  };
}

async function readJson(c: Context, options: { emptyAs?: unknown }): Promise<unknown> {
  const text = await c.req.text();
  return text.trim() === '' && 'emptyAs' in options ? options.emptyAs : parseJsonText(text);
}

/** A JSON media type, with at most a UTF-8 charset. */
const JSON_MEDIA_TYPE = /^application\/json[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*(?:utf-8|"utf-8")[ \t]*)?$/i;

/**
 * `jsonBody` and the route's body validation in one check, for the routes that hold a caller for
 * minutes (see `heldRoute`): what `createRoute`'s validators do (415 for a body that is not
 * JSON, 400 `validation_failed` against `schema`), without their two more layers per request.
 * The handler reads the result with `validBody`.
 */
export function validJsonBody(schema: z.ZodType, options: { emptyAs?: unknown } = {}): MiddlewareHandler {
  return async function validJsonBodyMiddleware(c, next) {
    const type = c.req.header('content-type');
    if (type !== undefined && !JSON_MEDIA_TYPE.test(type)) throw new AppError('unsupported_media_type', 'request bodies must be JSON sent as "Content-Type: application/json"');
    const result = schema.safeParse(await readJson(c, options));
    if (!result.success) throw validationFailed(result.error, 'body');
    c.req.addValidatedData('json', result.data as object);
    return next();
  };
}

/** The body `validJsonBody(schema)` validated. */
export function validBody<S extends z.ZodType>(c: Context, _schema: S): z.output<S> {
  return (c.req.valid as (target: 'json') => unknown)('json') as z.output<S>;
}
