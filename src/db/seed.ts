import type { Persistence, Transaction } from '../core/persistence.js';
import type { Sensitivity } from '../approvals/approval.js';
import { generateToken, hashToken, tokenPrefix } from '../auth/tokens.js';

const g = 'guest';
const d = 'developer';
const a = 'admin';

/** The origin's 21-tool catalog, then the default filesystem server's tools: tool → sensitivity and the roles granted it. */
export const SEED_CATALOG: readonly { tool: string; sensitivity: Sensitivity; roles: string[] }[] = [
  { tool: 'read_file', sensitivity: 'MEDIUM', roles: [g, d, a] },
  { tool: 'write_file', sensitivity: 'HIGH', roles: [d, a] },
  { tool: 'list_files', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'execute_python', sensitivity: 'CRITICAL', roles: [d, a] },
  { tool: 'execute_bash', sensitivity: 'CRITICAL', roles: [d, a] },
  { tool: 'rag_search', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'ai_chat', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'git_status', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'git_log', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'git_diff', sensitivity: 'MEDIUM', roles: [g, d, a] },
  { tool: 'git_add', sensitivity: 'MEDIUM', roles: [d, a] },
  { tool: 'git_commit', sensitivity: 'HIGH', roles: [a] },
  { tool: 'web_screenshot', sensitivity: 'LOW', roles: [d, a] },
  { tool: 'web_scrape', sensitivity: 'MEDIUM', roles: [d, a] },
  { tool: 'web_analyze_ui', sensitivity: 'LOW', roles: [d, a] },
  { tool: 'web_automate', sensitivity: 'HIGH', roles: [a] },
  { tool: 'notion_create_page', sensitivity: 'MEDIUM', roles: [a] },
  { tool: 'notion_search', sensitivity: 'LOW', roles: [a] },
  { tool: 'web_to_notion', sensitivity: 'MEDIUM', roles: [a] },
  { tool: 'switch_model', sensitivity: 'HIGH', roles: [a] },
  { tool: 'get_current_model', sensitivity: 'LOW', roles: [d, a] },
  // The default upstream, @modelcontextprotocol/server-filesystem (its read_file and write_file are above):
  // every tool is named, so none is left to the server's own annotations.
  { tool: 'read_text_file', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'read_media_file', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'read_multiple_files', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'list_directory', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'list_directory_with_sizes', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'directory_tree', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'search_files', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'get_file_info', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'list_allowed_directories', sensitivity: 'LOW', roles: [g, d, a] },
  { tool: 'edit_file', sensitivity: 'HIGH', roles: [d, a] },
  { tool: 'create_directory', sensitivity: 'HIGH', roles: [d, a] },
  { tool: 'move_file', sensitivity: 'HIGH', roles: [d, a] },
];

export const SEED_ROLES = [
  { name: g, description: 'read-only helpers', permissions: [] as string[] },
  { name: d, description: 'builds and runs code', permissions: [] as string[] },
  { name: a, description: 'decides approval requests', permissions: ['approval.view', 'approval.manage'] },
];

export const SEED_USERS = [
  { id: 'guest_user', role: g },
  { id: 'dev_user', role: d },
  { id: 'admin_user', role: a },
];

export interface IssuedToken {
  user: string;
  role: string;
  token: string;
}

/** Creates a user with a fresh token; returns the token (shown once). */
export async function createUserWithToken(store: Persistence, id: string, role: string, now: number): Promise<string> {
  const token = generateToken();
  await store.withTransaction(async (tx) => {
    await tx.identity.insertUser({ id, role, now });
    await tx.identity.insertToken({ userId: id, tokenHash: hashToken(token), prefix: tokenPrefix(token), now });
  });
  return token;
}

/**
 * Seeds roles, grants, the catalog and the three users. With `reset`, users, tokens, grants and
 * policies are replaced first (requests and the audit log stay). Returns the new tokens.
 */
export function seedDatabase(store: Persistence, options: { reset?: boolean; now: number }): Promise<IssuedToken[]> {
  return store.withTransaction((tx) => seedInTransaction(tx, options));
}

/** `seedDatabase` inside a transaction the caller holds. */
export async function seedInTransaction(tx: Transaction, options: { reset?: boolean; now: number }): Promise<IssuedToken[]> {
  const { now } = options;
  const { identity, policy } = tx;
  const issued: IssuedToken[] = [];
  if (options.reset) {
    await identity.deleteUsersAndTokens();
    await policy.deleteGrantsAndPolicies();
  }
  for (const role of SEED_ROLES) {
    await policy.upsertRole(role.name, role.description, now);
    for (const p of role.permissions) await policy.grant(role.name, p);
  }
  for (const entry of SEED_CATALOG) {
    await policy.upsertToolPolicy(entry.tool, entry.sensitivity);
    for (const role of entry.roles) await policy.grant(role, `tool:${entry.tool}`);
  }
  for (const u of SEED_USERS) {
    if (await identity.user(u.id)) continue;
    const token = generateToken();
    await identity.insertUser({ id: u.id, role: u.role, now });
    await identity.insertToken({ userId: u.id, tokenHash: hashToken(token), prefix: tokenPrefix(token), now });
    issued.push({ user: u.id, role: u.role, token });
  }
  await tx.meta.setMeta('seeded_at', String(now), now);
  return issued;
}

export async function isSeeded(store: Persistence): Promise<boolean> {
  return (await store.meta.getMeta('seeded_at')) !== undefined;
}
