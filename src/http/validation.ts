import type { Context } from 'hono';
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

/** Reads the JSON body and validates it; every failure is a 400 with the field that failed. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S, options: { emptyAs?: unknown } = {}): Promise<z.infer<S>> {
  const text = await c.req.text();
  const raw = text.trim() === '' && 'emptyAs' in options ? options.emptyAs : parseJsonText(text);
  return parseWith(schema, raw, 'body');
}

export function parseWith<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length ? `${where}.${issue.path.join('.')}` : where;
    throw new AppError('validation_failed', `${path}: ${issue.message}`, {
      issues: parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String), message: i.message })),
    });
  }
  return parsed.data;
}

export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return parseWith(schema, c.req.query(), 'query');
}
