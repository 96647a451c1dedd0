import type { Sensitivity } from '../approvals/approval.js';

export interface ToolPolicyRecord {
  /** A tool name or glob (`fs.*`). */
  tool: string;
  sensitivity: Sensitivity;
  description: string;
}

/** A role's grant: `approval.view`, `approval.manage`, or `tool:<name or glob>`. */
export interface GrantRecord {
  role: string;
  permission: string;
}

export interface PolicyReads {
  roleNames(): Promise<string[]>;
  rolePermissions(): Promise<GrantRecord[]>;
  toolPolicies(): Promise<ToolPolicyRecord[]>;
}

/** Roles, grants and tool policies inside a transaction. */
export interface PolicyStore extends PolicyReads {
  upsertRole(name: string, description: string, now: number): Promise<void>;
  grant(role: string, permission: string): Promise<void>;
  upsertToolPolicy(tool: string, sensitivity: Sensitivity, description?: string): Promise<void>;
  /** Deletes every grant and tool policy (a reseed; roles stay). */
  deleteGrantsAndPolicies(): Promise<void>;
}
