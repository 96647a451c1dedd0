import type { ApprovalCore } from '../approvals/core.js';
import { needsApproval } from '../approvals/approval.js';
import type { PolicyService, Principal } from '../policy/policy.service.js';
import type { ToolExecutor } from './upstreams.js';

export interface ToolCatalogDeps {
  approvals: ApprovalCore;
  tools: ToolExecutor;
  policy: PolicyService;
  rbacEnabled: boolean;
  approvalWorkflowEnabled: boolean;
}

/** The tools a principal may call, with what the gate will do with each: what GET /tools and MCP tools/list show. */
export function visibleTools(deps: Omit<ToolCatalogDeps, 'approvals'>, principal: Principal) {
  return deps.tools
    .list()
    .map((tool) => ({ tool, policy: deps.policy.resolve(tool.name, tool) }))
    .filter(({ policy }) => !deps.rbacEnabled || policy.roles.has(principal.role))
    .map(({ tool, policy }) => ({
      name: tool.name,
      title: tool.title ?? null,
      description: tool.description,
      sensitivity: policy.sensitivity,
      requiresApproval: deps.approvalWorkflowEnabled && needsApproval(policy.sensitivity),
      inputSchema: tool.inputSchema,
      annotations: tool.annotations ?? {},
    }));
}
