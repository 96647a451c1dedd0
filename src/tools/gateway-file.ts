import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { SENSITIVITIES } from '../approvals/approval.js';
import { AppError } from '../core/errors.js';
import { checkNotifySection, escalationSchema, receiverSchema, slackSchema } from '../notify/notify.schemas.js';

const sensitivity = z.enum(SENSITIVITIES as unknown as ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);
const toolName = z.string().min(1).max(200);

const stdioUpstream = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only'),
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
    prefix: z.string().max(64).default(''),
    callTimeoutMs: z.number().int().positive().default(300_000),
    /** Take the sensitivity of tools the policy does not name from their MCP annotations (absent: false). */
    trustAnnotations: z.boolean().optional(),
  })
  .strict();

const httpUpstream = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only'),
    url: z.url(),
    headers: z.record(z.string(), z.string()).optional(),
    prefix: z.string().max(64).default(''),
    callTimeoutMs: z.number().int().positive().default(300_000),
    /** Take the sensitivity of tools the policy does not name from their MCP annotations (absent: false). */
    trustAnnotations: z.boolean().optional(),
  })
  .strict();

const CONDITION_SHAPES = 'a condition is one of {"equals": value}, {"oneOf": [values]}, {"prefix": "text"} or {"glob": "pattern with * and ?"}';
const argumentCondition = z.union(
  [
    z.object({ equals: z.json() }).strict(),
    z.object({ oneOf: z.array(z.json()).min(1, 'oneOf needs at least one value').max(1000) }).strict(),
    z.object({ prefix: z.string().min(1).max(1000) }).strict(),
    z.object({ glob: z.string().min(1).max(1000) }).strict(),
  ],
  { error: CONDITION_SHAPES },
);

/**
 * A policy entry: without `when`, the sensitivity and roles of a tool (or glob); with `when`, a
 * rule on the call's argument values that raises the sensitivity or denies it, enforced or, with
 * `"mode": "shadow"`, only logged.
 */
const policyEntry = z
  .object({
    tool: toolName,
    sensitivity: sensitivity.optional(),
    roles: z.array(z.string().min(1)).optional(),
    when: z.record(z.string().min(1).max(200), argumentCondition).optional(),
    deny: z.boolean().optional(),
    mode: z.enum(['enforce', 'shadow']).optional(),
  })
  .strict()
  .superRefine((entry, ctx) => {
    if (entry.when === undefined) {
      if (entry.deny !== undefined) ctx.addIssue({ code: 'custom', path: ['deny'], message: '"deny" needs "when": the argument values it applies to' });
      if (entry.mode !== undefined) ctx.addIssue({ code: 'custom', path: ['mode'], message: '"mode" is for rules with "when"' });
      return;
    }
    if (Object.keys(entry.when).length === 0) ctx.addIssue({ code: 'custom', path: ['when'], message: '"when" needs at least one argument condition' });
    if (entry.roles !== undefined) ctx.addIssue({ code: 'custom', path: ['roles'], message: 'a rule with "when" raises the sensitivity or denies; roles belong in an entry without "when"' });
    if (entry.deny !== true && entry.sensitivity === undefined) ctx.addIssue({ code: 'custom', path: ['when'], message: 'a rule with "when" needs "sensitivity" (to raise it) or "deny": true' });
    if (entry.deny === true && entry.sensitivity !== undefined) ctx.addIssue({ code: 'custom', path: ['deny'], message: 'a rule either denies or sets a sensitivity, not both' });
  });

export const toolgateFileSchema = z
  .object({
    upstreams: z.array(z.union([stdioUpstream, httpUpstream])).default([]),
    policy: z.array(policyEntry).default([]),
    defaults: z
      .object({
        rolesBySensitivity: z.partialRecord(sensitivity, z.array(z.string().min(1))).optional(),
        /** The sensitivity of tools that neither the policy, the catalog nor a trusted upstream's annotations settle (absent: HIGH). */
        sensitivity: sensitivity.optional(),
      })
      .strict()
      .default({}),
    /** Webhook and Slack receivers (docs/notifications.md). */
    notify: z.array(receiverSchema).optional(),
    /** The Slack app behind slack receivers and the interactions endpoint. */
    slack: slackSchema.optional(),
    /** Per sensitivity: whom to tell when a request has waited too long. */
    escalation: escalationSchema.optional(),
  })
  .strict()
  .superRefine(checkNotifySection);

export type ToolgateFile = z.infer<typeof toolgateFileSchema>;
export type UpstreamConfig = ToolgateFile['upstreams'][number];
export type StdioUpstreamConfig = z.infer<typeof stdioUpstream>;

/** The official filesystem MCP server over ./data/workspace, used when no toolgate.json exists. */
export function defaultToolgateFile(workspace = './data/workspace'): ToolgateFile {
  const require = createRequire(import.meta.url);
  const server = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
  return {
    // Not trusted: the seeded catalog names every tool of this server.
    upstreams: [{ name: 'fs', command: process.execPath, args: [server, workspace], prefix: '', callTimeoutMs: 300_000, trustAnnotations: false }],
    policy: [],
    defaults: { sensitivity: 'HIGH' },
  };
}

/** Reads and validates toolgate.json; `path` undefined means ./toolgate.json if present, else the default. */
export function loadToolgateFile(path: string | undefined): { file: ToolgateFile; source: string } {
  const candidate = path ?? './toolgate.json';
  if (!existsSync(candidate)) {
    if (path) throw new AppError('config_invalid', `TOOLGATE_CONFIG: file not found: ${path}`);
    mkdirSync('./data/workspace', { recursive: true });
    return { file: defaultToolgateFile(), source: 'default (filesystem server over ./data/workspace)' };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(candidate, 'utf8'));
  } catch (err) {
    throw new AppError('config_invalid', `${candidate}: not valid JSON: ${(err as Error).message}`);
  }
  const parsed = toolgateFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
    throw new AppError('config_invalid', `${candidate}: invalid configuration:\n${problems}`);
  }
  return { file: parsed.data, source: candidate };
}
