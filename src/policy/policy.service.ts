import type { PolicyReads } from './policy-store.js';
import type { Sensitivity } from '../approvals/approval.js';
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import canonicalize from 'canonicalize';
import { globMatches } from './glob.js';

/** A short, stable fingerprint of a JSON value: the first 16 hex digits of the SHA-256 of its canonical form. */
function versionOf(value: unknown): string {
  return createHash('sha256')
    .update(canonicalize(value) ?? 'null')
    .digest('hex')
    .slice(0, 16);
}

export const APPROVAL_VIEW = 'approval.view';
export const APPROVAL_MANAGE = 'approval.manage';

export interface ToolAnnotations {
  readOnlyHint?: boolean | undefined;
  destructiveHint?: boolean | undefined;
  [key: string]: unknown;
}

/** What an upstream says about one of its tools, and whether the operator trusts it to say so. */
export interface ToolHints {
  annotations: ToolAnnotations | undefined;
  /** `"trustAnnotations": true` on the tool's upstream in toolgate.json. */
  trustAnnotations: boolean;
}

/** One condition on an argument's value. */
export type ArgumentCondition = { equals: unknown } | { oneOf: unknown[] } | { prefix: string } | { glob: string };

/** A toolgate.json policy entry: a tool's sensitivity and roles, or (with `when`) a rule on its argument values. */
export interface PolicyOverride {
  tool: string;
  sensitivity?: Sensitivity | undefined;
  roles?: string[] | undefined;
  when?: Record<string, ArgumentCondition> | undefined;
  deny?: boolean | undefined;
  mode?: 'enforce' | 'shadow' | undefined;
}

/** A rule on argument values that matched a call: where it is in toolgate.json and what it does. */
export interface MatchedRule {
  /** `policy[3]`: its place in toolgate.json. */
  rule: string;
  tool: string;
  effect: 'deny' | Sensitivity;
  mode: 'enforce' | 'shadow';
}

/** What the rules on argument values make of a call: deny > approval (the highest sensitivity) > allow. */
export interface ArgumentJudgement {
  sensitivity: Sensitivity;
  /** The enforcing rule that denies it, if one does. */
  denied: MatchedRule | null;
  /** The enforcing rule that set the sensitivity, when one raised it. */
  raisedBy: MatchedRule | null;
  /** Shadow rules that matched: logged, never enforced. */
  shadow: MatchedRule[];
  /** What the shadow rules would have made of it, had they been enforced. */
  shadowOutcome: { sensitivity: Sensitivity; denied: boolean } | null;
}

export type RolesBySensitivity = Record<Sensitivity, string[]>;

export const DEFAULT_ROLES_BY_SENSITIVITY: RolesBySensitivity = {
  LOW: ['guest', 'developer', 'admin'],
  MEDIUM: ['developer', 'admin'],
  HIGH: ['developer', 'admin'],
  CRITICAL: ['admin'],
};

export interface ResolvedPolicy {
  sensitivity: Sensitivity;
  roles: ReadonlySet<string>;
  /** Where the sensitivity came from: `config`, `catalog`, a trusted upstream's `annotations`, or the `default`. */
  source: 'config' | 'catalog' | 'annotations' | 'default';
}

export interface Principal {
  id: string;
  role: string;
  /** True when RBAC is off and the caller came in without a token. */
  anonymous: boolean;
  /** The API token (api_tokens.id) the caller authenticated with; absent for X-User-ID and anonymous callers. */
  tokenId?: number | undefined;
  /** The web console session (console_sessions.id) the caller came in with, when it was a session cookie. */
  sessionId?: string | undefined;
}

interface Rule {
  pattern: string;
  matcher: RegExp | null;
}

function compile(pattern: string): Rule {
  if (!/[*?]/.test(pattern)) return { pattern, matcher: null };
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return { pattern, matcher: new RegExp(`^${source}$`) };
}

function matches(rule: Rule, tool: string) {
  return rule.matcher ? rule.matcher.test(tool) : rule.pattern === tool;
}

/** Exact names first, then globs, the most specific (longest) first. */
function findRule<T extends Rule>(rules: readonly T[], tool: string): T | undefined {
  return rules.find((r) => r.matcher === null && r.pattern === tool) ?? rules.find((r) => r.matcher !== null && matches(r, tool));
}

function sortRules<T extends Rule>(rules: T[]): T[] {
  return rules.sort((a, b) => b.pattern.length - a.pattern.length);
}

const RANKS: Record<Sensitivity, number> = { LOW: 0, MEDIUM: 1, HIGH: 2, CRITICAL: 3 };
const rank = (s: Sensitivity) => RANKS[s];

/**
 * Does an argument's value meet a condition? Equality is of canonical JSON. Prefixes and globs
 * (`*` any run of characters, `?` one; matched without regular expressions) apply to strings, and
 * hold when either the value or its normalised path does: `/srv/../etc/passwd` is under `/etc/`.
 */
export function conditionHolds(condition: ArgumentCondition, value: unknown): boolean {
  if ('equals' in condition) return value !== undefined && canonicalize(value) === canonicalize(condition.equals);
  if ('oneOf' in condition) return value !== undefined && condition.oneOf.some((v) => canonicalize(v) === canonicalize(value));
  if (typeof value !== 'string') return false;
  const forms = value.includes('..') || value.includes('//') || value.includes('/./') ? [value, posix.normalize(value)] : [value];
  if ('prefix' in condition) return forms.some((v) => v.startsWith(condition.prefix));
  return forms.some((v) => globMatches(condition.glob, v));
}

export function sensitivityFromAnnotations(annotations: ToolAnnotations | undefined): Sensitivity {
  if (annotations?.readOnlyHint === true) return 'LOW';
  if (annotations?.destructiveHint === false) return 'MEDIUM';
  return 'HIGH';
}

export interface PolicyOptions {
  overrides?: PolicyOverride[];
  rolesBySensitivity?: Partial<RolesBySensitivity>;
  defaultSensitivity?: Sensitivity | undefined;
}

/**
 * Who may call which tool, and how sensitive it is. The catalog (tool_policies and role grants)
 * lives in the database; `toolgate.json` overrides it. The catalog is small, so it is held in
 * memory and reloaded by `refresh()`, which the `refresh-policy` background job calls every polling interval.
 * User identity and activity are never cached: see AuthService.
 */
export class PolicyService {
  private catalog: (Rule & { sensitivity: Sensitivity })[] = [];
  private grants = new Map<string, { permissions: Set<string>; toolRules: Rule[] }>();
  private readonly overrides: (Rule & PolicyOverride)[];
  private readonly argumentRules: (Rule & PolicyOverride & { index: number })[];
  private readonly resolved = new Map<string, { hints: ToolHints | undefined; policy: ResolvedPolicy }>();
  private readonly rolesBySensitivity: RolesBySensitivity;
  private readonly defaultSensitivity: Sensitivity;
  private readonly options: PolicyOptions;
  private currentVersion = '';

  private constructor(
    private readonly store: PolicyReads,
    options: PolicyOptions,
  ) {
    this.overrides = sortRules((options.overrides ?? []).filter((o) => o.when === undefined).map((o) => ({ ...o, ...compile(o.tool) })));
    this.argumentRules = (options.overrides ?? []).flatMap((o, index) => (o.when === undefined ? [] : [{ ...o, ...compile(o.tool), index }]));
    this.rolesBySensitivity = { ...DEFAULT_ROLES_BY_SENSITIVITY, ...options.rolesBySensitivity };
    this.defaultSensitivity = options.defaultSensitivity ?? 'HIGH';
    this.options = options;
  }

  /**
   * The version of the effective policy: a fingerprint of the catalog, the role grants and
   * toolgate.json's policy and defaults. Each request records the version it was made under, and
   * its binding (approvals/binding.ts) covers it.
   */
  get version(): string {
    return this.currentVersion;
  }

  /** The policy with the catalog loaded from the database. */
  static async load(store: PolicyReads, options: PolicyOptions = {}): Promise<PolicyService> {
    const policy = new PolicyService(store, options);
    await policy.refresh();
    return policy;
  }

  async refresh(): Promise<void> {
    const [toolPolicies, rolePermissions] = await Promise.all([this.store.toolPolicies(), this.store.rolePermissions()]);
    this.resolved.clear();
    this.catalog = sortRules(toolPolicies.map((p) => ({ ...compile(p.tool), sensitivity: p.sensitivity })));
    const grants = new Map<string, { permissions: Set<string>; toolRules: Rule[] }>();
    for (const { role, permission } of rolePermissions) {
      let g = grants.get(role);
      if (!g) grants.set(role, (g = { permissions: new Set(), toolRules: [] }));
      g.permissions.add(permission);
      if (permission.startsWith('tool:')) g.toolRules.push(compile(permission.slice(5)));
    }
    this.grants = grants;
    const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    this.currentVersion = versionOf({
      catalog: toolPolicies.map((p) => [p.tool, p.sensitivity]).sort((a, b) => byKey(a[0]!, b[0]!)),
      grants: rolePermissions.map((g) => `${g.role} ${g.permission}`).sort(byKey),
      overrides: this.options.overrides ?? [],
      rolesBySensitivity: this.rolesBySensitivity,
      defaultSensitivity: this.defaultSensitivity,
    });
  }

  /** Is the tool named, exactly and not by a glob, by the catalog or the config (so that it may be requested without an upstream)? */
  namesExactly(tool: string): boolean {
    const exact = (r: Rule) => r.matcher === null && r.pattern === tool;
    return this.overrides.some(exact) || this.catalog.some(exact);
  }

  /**
   * `hints`: the upstream's entry for the tool. Its annotations count only when the operator
   * trusts that upstream: any MCP server can claim `readOnlyHint` for a tool that deletes files.
   */
  resolve(tool: string, hints?: ToolHints): ResolvedPolicy {
    // Resolved once per tool, upstream listing and catalog version: the gate asks on every call.
    const cached = this.resolved.get(tool);
    if (cached && cached.hints === hints) return cached.policy;
    const policy = this.resolveUncached(tool, hints);
    this.resolved.set(tool, { hints, policy });
    return policy;
  }

  private resolveUncached(tool: string, hints?: ToolHints): ResolvedPolicy {
    const override = findRule(this.overrides, tool);
    const catalogRule = findRule(this.catalog, tool);
    const trusted = hints?.trustAnnotations === true;
    const fallback = trusted ? sensitivityFromAnnotations(hints.annotations) : this.defaultSensitivity;
    const sensitivity = override?.sensitivity ?? catalogRule?.sensitivity ?? fallback;
    const source = override?.sensitivity ? 'config' : catalogRule ? 'catalog' : trusted ? 'annotations' : 'default';
    let roles: Set<string>;
    if (override?.roles) roles = new Set(override.roles);
    else if (catalogRule) roles = this.rolesGranted(tool);
    else roles = new Set(this.rolesBySensitivity[sensitivity]);
    return { sensitivity, roles, source };
  }

  private rolesGranted(tool: string): Set<string> {
    const out = new Set<string>();
    for (const [role, g] of this.grants) if (g.toolRules.some((r) => matches(r, tool))) out.add(role);
    return out;
  }

  /** Are there rules on argument values for this tool? (The gate skips judging calls of tools without.) */
  hasArgumentRules(tool: string): boolean {
    return this.argumentRules.some((r) => matches(r, tool));
  }

  /**
   * The rules on argument values applied to a call whose tool is `base` sensitive: every enforcing
   * rule that matches counts (deny wins; else the highest sensitivity, never lower than `base`);
   * shadow rules are only reported, with what they would have done.
   */
  judgeArguments(tool: string, args: Record<string, unknown>, base: Sensitivity): ArgumentJudgement {
    const matched: MatchedRule[] = [];
    for (const r of this.argumentRules) {
      if (!matches(r, tool) || !Object.entries(r.when!).every(([key, condition]) => conditionHolds(condition, args[key]))) continue;
      matched.push({ rule: `policy[${r.index}]`, tool: r.tool, effect: r.deny ? 'deny' : r.sensitivity!, mode: r.mode ?? 'enforce' });
    }
    const outcome = (rules: MatchedRule[]) => {
      const denied = rules.find((m) => m.effect === 'deny') ?? null;
      let sensitivity = base;
      let raisedBy: MatchedRule | null = null;
      for (const m of rules) {
        if (m.effect !== 'deny' && rank(m.effect) > rank(sensitivity)) {
          sensitivity = m.effect;
          raisedBy = m;
        }
      }
      return { denied, sensitivity, raisedBy };
    };
    const enforced = outcome(matched.filter((m) => m.mode === 'enforce'));
    const shadow = matched.filter((m) => m.mode === 'shadow');
    const would = shadow.length > 0 ? outcome(matched) : null;
    return {
      ...enforced,
      shadow,
      shadowOutcome: would ? { sensitivity: would.sensitivity, denied: would.denied !== null } : null,
    };
  }

  hasPermission(role: string, permission: string): boolean {
    return this.grants.get(role)?.permissions.has(permission) ?? false;
  }
}

