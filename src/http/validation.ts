import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from './errors.js';

/** Reads the JSON body and validates it; every failure is a 400 with the field that failed. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S, options: { emptyAs?: unknown } = {}): Promise<z.infer<S>> {
  const text = await c.req.text();
  let raw: unknown;
  if (text.trim() === '' && 'emptyAs' in options) raw = options.emptyAs;
  else {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new AppError('invalid_json', 'the request body is not valid JSON');
    }
  }
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
